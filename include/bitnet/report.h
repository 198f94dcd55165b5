#pragma once
// Self-contained HTML reports with inline SVG charts: one file that opens offline, with no script and nothing
// fetched from elsewhere. The charts are written here (axes with "nice" ticks, linear or log scales, lines with
// markers, grouped bars with error bars, horizontal bars for ranked lists, legends) because what they need is
// small and a chart library in Debian would bring a plotting runtime (cairo/gnuplot/ROOT) for a few hundred lines
// of SVG text; see docs/reports.md.
//
// This layer knows text and numbers only: the benchmark, training and quantization reports (tools/, src/train)
// fill charts and pages with their data.
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::report {

struct Axis {
  std::string label;
  bool log = false;          // base-10 log scale (values <= 0 are left out)
  double min = NAN, max = NAN;  // NaN: from the data (a linear y axis starts at 0 when all data is positive)
  std::string unit;          // appended to tick labels ("%", " t/s")
  double scale = 1.0;        // tick label = value * scale (fractions shown as percent: 100)
  bool integer = false;      // ticks on whole numbers only (thread counts, steps)
  bool include_zero = true;  // a linear value axis reaches down (or up) to 0
};

// An axis with a label (log: base-10 scale), and one whose values are fractions shown as percent (min 0 when
// `from_zero`).
Axis axis(std::string label, bool log = false);
Axis percent_axis(std::string label, bool from_zero = true);

// A line (x, y) with optional markers and an error band drawn as vertical bars (lo..hi per point).
struct Series {
  std::string name;
  std::vector<double> x, y;
  std::vector<double> lo, hi;  // empty, or one per point: drawn as error bars
  bool markers = false;
  bool dashed = false;
  bool line = true;            // false: markers only
  int colour = -1;             // palette index; -1: the series' position (two series of one run can share one)
};

class LineChart {
 public:
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  // An SVG document of `width` x `height` pixels (class "chart"); NaN points break a line.
  std::string svg(int width = 720, int height = 340) const;
};

// Bars per category, one bar per series (grouped), optional error bars (lo..hi).
struct BarSeries {
  std::string name;
  std::vector<double> values;  // one per category; NaN: no bar
  std::vector<double> lo, hi;  // empty or one per category
};

class BarChart {
 public:
  std::string title;
  std::vector<std::string> categories;
  std::vector<BarSeries> series;
  Axis value;              // the value axis (y, or x when horizontal)
  bool horizontal = false; // categories down the side: for long ranked lists (height grows with them)
  std::string svg(int width = 720, int height = 340) const;
};

// Tick positions for [lo, hi]: about `target` steps of 1, 2 or 5 x 10^k (linear), or powers of 10 (log).
std::vector<double> nice_ticks(double lo, double hi, int target = 6, bool log = false);
// "1.5k", "0.25", "12" ... a short label for a tick value.
std::string tick_label(double v);
std::string html_escape(std::string_view text);

// A report page: headings, paragraphs, tables and charts in order, with a small inline stylesheet.
class HtmlPage {
 public:
  explicit HtmlPage(std::string title, std::string subtitle = {});
  void heading(const std::string& text, int level = 2);
  void paragraph(const std::string& text);  // escaped
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
  void chart(const std::string& svg, const std::string& caption = {}, const std::string& id = {});
  void definition_list(const std::vector<std::pair<std::string, std::string>>& items);
  std::string html() const;
  // Written beside the target and renamed over it, so that a browser reloading the file mid-write never reads
  // half a page (the training report is rewritten while it is open).
  void write(const std::string& path) const;

 private:
  std::string title_, subtitle_, body_;
  int charts_ = 0;
};

// The colour of series i (a palette readable by the colour-blind, Tableau 10).
const char* series_colour(size_t i);

}  // namespace bitnet::report
