// The report writer (include/bitnet/report.h): ticks, one test per chart type (line with markers, gaps and error
// bars; grouped vertical bars with error bars; horizontal ranked bars; log and percent axes), the page, and that
// every coordinate lands inside the chart. The pages are also rendered in headless Chromium (tests/report).
#include <bitnet/report.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <unistd.h>

namespace bitnet::report {
namespace {

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// Every number in the x/y/cx/cy/width/height attributes and in path data lies within the chart's box.
void expect_inside(const std::string& svg, double w, double h) {
  std::smatch m;
  const std::regex attr(R"re(\b(x|cx|x1|x2|y|cy|y1|y2)="(-?[0-9.]+)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attr); it != std::sregex_iterator(); ++it) {
    const double v = std::stod((*it)[2]);
    const double limit = (*it)[1].str()[0] == 'x' || (*it)[1].str() == "cx" ? w : h;
    EXPECT_GE(v, -0.5) << (*it)[0];
    EXPECT_LE(v, limit + 0.5) << (*it)[0];
  }
  const std::regex path(R"re(d="([^"]*)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), path); it != std::sregex_iterator(); ++it) {
    const std::string d = (*it)[1];
    const std::regex num(R"(-?[0-9]+(\.[0-9]+)?)");
    for (auto n = std::sregex_iterator(d.begin(), d.end(), num); n != std::sregex_iterator(); ++n) {
      const double v = std::stod((*n)[0]);
      EXPECT_GE(v, -0.5) << d;
      EXPECT_LE(v, std::max(w, h) + 0.5) << d;
    }
  }
  // Tags balance: every <svg>, <text>, <title> is closed.
  EXPECT_EQ(count(svg, "<svg "), count(svg, "</svg>"));
  EXPECT_EQ(count(svg, "<text "), count(svg, "</text>"));
  EXPECT_EQ(count(svg, "<title>"), count(svg, "</title>"));
}

TEST(ReportTicks, NiceLinearAndLogTicks) {
  EXPECT_EQ(nice_ticks(0, 97), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(nice_ticks(0.3, 0.71, 4), (std::vector<double>{0.2, 0.4, 0.6, 0.8}));
  EXPECT_EQ(nice_ticks(0.31, 0.71, 8), (std::vector<double>{0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75}));
  EXPECT_EQ(nice_ticks(-12, 7, 4), (std::vector<double>{-15, -10, -5, 0, 5, 10}));
  EXPECT_EQ(nice_ticks(0.002, 0.3, 6, true), (std::vector<double>{0.001, 0.01, 0.1, 1}));
  EXPECT_EQ(nice_ticks(3, 7, 6, true), (std::vector<double>{1, 2, 5, 10}));
  EXPECT_TRUE(nice_ticks(5, 5).empty());
  EXPECT_TRUE(nice_ticks(-1, 5, 6, true).empty());
  EXPECT_EQ(tick_label(15000), "15k");
  EXPECT_EQ(tick_label(2.5e9), "2.5G");
  EXPECT_EQ(tick_label(0.25), "0.25");
  EXPECT_EQ(tick_label(0), "0");
}

TEST(ReportLineChart, LinesMarkersGapsAndErrorBars) {
  LineChart c;
  c.title = "loss <train & val>";
  c.x.label = "step";
  c.y.label = "nats";
  c.series.push_back({"train", {0, 1, 2, 3, 4}, {5, 4, NAN, 3, 2.5}, {}, {}, false, false, true});
  c.series.push_back({"val", {0, 2, 4}, {5.2, 3.5, 2.9}, {5, 3.2, 2.7}, {5.4, 3.8, 3.1}, true, true, true});
  const std::string svg = c.svg(600, 300);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"600\" height=\"300\"", 0), 0u);
  EXPECT_NE(svg.find("loss &lt;train &amp; val&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<train"), std::string::npos);
  // The NaN splits "train" into two runs: M L, then M L.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex(R"re(<path d="(M[^"]*)" stroke="#4e79a7")re")));
  EXPECT_EQ(count(m[1], "M"), 2);
  EXPECT_EQ(count(m[1], "L"), 2);
  EXPECT_EQ(count(svg, "<circle"), 3);                  // markers on "val" only
  EXPECT_EQ(count(svg, "stroke-dasharray=\"5 3\""), 2);  // the dashed line and its legend entry
  EXPECT_EQ(count(svg, "stroke=\"#333\" stroke-width=\"1.3\""), 3);  // an error bar per "val" point
  expect_inside(svg, 600, 300);
}

TEST(ReportLineChart, LogAxisLeavesOutNonPositiveValuesAndIntegerTicks) {
  LineChart c;
  c.y.log = true;
  c.x.integer = true;
  c.series.push_back({"ppl", {1, 2, 3}, {100, 0, 10}, {}, {}, true, false, true});
  const std::string svg = c.svg();
  EXPECT_EQ(count(svg, "<circle"), 2);
  EXPECT_NE(svg.find(">100<"), std::string::npos);
  EXPECT_EQ(svg.find(">1.5<"), std::string::npos);  // whole-number x ticks
  expect_inside(svg, 720, 340);
}

TEST(ReportBarChart, GroupedBarsWithErrorBarsAndPercentAxis) {
  BarChart c;
  c.title = "roofline";
  c.categories = {"tg128 (t=1)", "tg128 (t=2)", "pp512"};
  c.value = percent_axis("fraction");
  c.series.push_back({"a", {0.5, 0.7, NAN}, {0.45, 0.6, NAN}, {0.55, 0.8, NAN}});
  c.series.push_back({"b", {0.4, 0.65, 0.2}, {}, {}});
  const std::string svg = c.svg(640, 320);
  EXPECT_EQ(count(svg, "<rect x="), 5);  // the NaN has no bar
  EXPECT_EQ(count(svg, "stroke=\"#333\" stroke-width=\"1.3\""), 2);
  EXPECT_NE(svg.find(">80%<"), std::string::npos);
  expect_inside(svg, 640, 320);
}

TEST(ReportBarChart, HorizontalRankedBarsGrowWithTheList) {
  BarChart c;
  c.horizontal = true;
  c.value = axis("SQNR (dB)");
  for (int i = 0; i < 30; ++i) c.categories.push_back("model.layers." + std::to_string(i) + ".mlp.down_proj");
  BarSeries s{"output", {}, {}, {}};
  for (int i = 0; i < 30; ++i) s.values.push_back(5 + i * 0.3);
  c.series.push_back(s);
  const std::string svg = c.svg(900);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex(R"re(height="([0-9]+)")re")));
  const int height = std::stoi(m[1]);
  EXPECT_GT(height, 30 * 18);
  EXPECT_EQ(count(svg, "<rect x="), 30);
  EXPECT_NE(svg.find(">model.layers.29.mlp.down_proj<"), std::string::npos);
  expect_inside(svg, 900, height);
}

TEST(ReportPage, SelfContainedEscapedAndWrittenWhole) {
  HtmlPage page("A <report>", "sub & title");
  page.paragraph("<script>alert(1)</script>");
  page.table({"a", "b"}, {{"1", "<2>"}});
  page.definition_list({{"cpu", "x86 & co"}});
  LineChart c;
  c.series.push_back({"s", {0, 1}, {0, 1}, {}, {}, false, false, true});
  page.chart(c.svg(), "caption", "my-chart");
  const std::string html = page.html();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Nothing refers outside the file: the only URL is the SVG namespace, which names and fetches nothing.
  std::string rest = html;
  for (size_t at; (at = rest.find("http://www.w3.org/2000/svg")) != std::string::npos;) rest.erase(at, 26);
  EXPECT_EQ(rest.find("http"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("<figure id=\"my-chart\">"), std::string::npos);
  EXPECT_NE(html.find("&lt;2&gt;"), std::string::npos);
  const std::string path = (std::filesystem::temp_directory_path() / ("bitnet_report_" + std::to_string(::getpid()) + ".html")).string();
  page.write(path);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), html);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace bitnet::report
