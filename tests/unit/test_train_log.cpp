// Training reports: the CSV log (written, read back, truncated on resume), the SVG plot, the progress line.
#include <bitnet/error.h>
#include <bitnet/train_log.h>
#include <gtest/gtest.h>

#include <regex>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bitnet::test {
namespace {

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()))).string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(TrainLog, CsvWritesReadsAndTruncatesOnResume) {
  const std::string csv = temp_file("bitnet_log.csv");
  {
    train::TrainLog log(csv);
    for (int64_t s = 0; s < 6; ++s)
      log.add({s, 3.0 - 0.25 * s, s % 2 ? 2.9 - 0.2 * s : NAN, 1e-3, 0.1, 0.5, 1234.5, 0.5 * s});
  }
  const std::string text = slurp(csv);
  EXPECT_EQ(text.substr(0, text.find('\n')), train::TrainLog::kHeader);
  EXPECT_NE(text.find("\n1,2.75,2.7,0.001,0.1,0.5,1234.5,0.5,\n"), std::string::npos) << text;  // no flip count
  EXPECT_NE(text.find("\n2,2.5,,0.001,"), std::string::npos) << text;  // no validation: empty field
  auto rows = train::read_train_log(csv);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[5].step, 5);
  EXPECT_DOUBLE_EQ(rows[5].loss, 1.75);
  EXPECT_TRUE(std::isnan(rows[4].val_loss));
  EXPECT_DOUBLE_EQ(rows[3].val_loss, 2.3);

  // Resuming from a checkpoint at step 4 drops the rows the resumed run will redo.
  {
    train::TrainLog resumed(csv, 4);
    EXPECT_EQ(resumed.rows().size(), 4u);
    resumed.add({4, 1.0, NAN, 1e-3, 0.1, 0.5, 1000, 2.0, 0.0125});
  }
  rows = train::read_train_log(csv);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_DOUBLE_EQ(rows[4].loss, 1.0);
  EXPECT_DOUBLE_EQ(rows[4].flip_fraction, 0.0125);
  EXPECT_TRUE(std::isnan(rows[3].flip_fraction));

  // A log written before the flip fraction was logged (8 fields) is still read, and resumed in the new layout.
  std::ofstream(csv, std::ios::trunc) << train::TrainLog::kHeaderV1 << "\n0,3,,0.001,0.1,0.5,1234.5,0\n1,2.5,,0.001,0.1,0.5,1234.5,0.5\n";
  ASSERT_EQ(train::read_train_log(csv).size(), 2u);
  { train::TrainLog resumed(csv, 1); }
  EXPECT_EQ(slurp(csv), std::string(train::TrainLog::kHeader) + "\n0,3,,0.001,0.1,0.5,1234.5,0,\n");

  std::ofstream(csv, std::ios::app) << "7,abc,,,,,,\n";
  EXPECT_THROW(train::read_train_log(csv), Error);
  std::remove(csv.c_str());
  EXPECT_THROW(train::read_train_log(csv), Error);
}

TEST(TrainLog, SvgPlotsTrainAndValidationLoss) {
  std::vector<train::LogRow> rows;
  for (int64_t s = 0; s <= 100; s += 10) rows.push_back({s, 4.0 - s * 0.02, s % 50 == 0 ? 4.1 - s * 0.02 : NAN});
  const std::string svg = train::render_loss_svg(rows, "tiny <ternary> run");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("tiny &lt;ternary&gt; run"), std::string::npos);
  // 11 training points (one line: M then 10 L) and 3 validation points (a line with 3 markers), both from the
  // report writer's LineChart.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex(R"re(<path d="(M[^"]*)" stroke="#4e79a7")re")));
  EXPECT_EQ(count(m[1], "M"), 1u);
  EXPECT_EQ(count(m[1], "L"), 10u);
  // The first training point sits at the plot's left edge (x 64), the last at its right edge (720 - 16).
  EXPECT_EQ(m[1].str().rfind("M64.0 ", 0), 0u) << m[1];
  EXPECT_NE(m[1].str().find("L704.0 "), std::string::npos) << m[1];
  ASSERT_TRUE(std::regex_search(svg, m, std::regex(R"re(<path d="(M[^"]*)" stroke="#f28e2b")re")));
  EXPECT_EQ(count(m[1], "L"), 2u);
  EXPECT_EQ(count(svg, "<circle"), 3u);
  // No rows still gives a valid (empty) chart.
  EXPECT_NE(train::render_loss_svg({}, "empty").find("</svg>"), std::string::npos);
}

TEST(TrainLog, ProgressLine) {
  EXPECT_EQ(train::format_progress(250, 1000, 2.34567, 12345.0, 61.0),
            "step 250/1000 [#####...............]  25% | loss 2.3457 | 12.3k tok/s | 1:01 elapsed | ETA 3:03");
  EXPECT_EQ(train::format_progress(0, 10, 5.0, 0.0, 0.0),
            "step 0/10 [....................]   0% | loss 5.0000 | 0 tok/s | 0:00 elapsed | ETA ?");
  EXPECT_NE(train::format_progress(10, 10, 1.0, 800.0, 4000.0).find("1:06:40 elapsed | ETA 0:00"), std::string::npos);
}

}  // namespace
}  // namespace bitnet::test
