// The SVG charts of report.h: a plot area with ticks and grid lines, a title and a legend above it, and the data
// drawn in the palette's colours. Coordinates are rounded to 0.1 px to keep the text short.
#include <bitnet/report.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace bitnet::report {

namespace {

constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

bool finite(double v) { return std::isfinite(v); }

// A linear or log map from data [d0, d1] to pixels [r0, r1].
struct Scale {
  double d0, d1, r0, r1;
  bool log;
  double operator()(double v) const {
    const double a = log ? std::log10(d0) : d0, b = log ? std::log10(d1) : d1;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    return r0 + t * (r1 - r0);
  }
};

// The data extent of an axis, widened to whole ticks; the ticks themselves.
struct Extent {
  double lo, hi;
  std::vector<double> ticks;
};

Extent extent_of(std::vector<double> values, const Axis& axis, bool zero_based) {
  if (axis.log) values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !(v > 0); }), values.end());
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !finite(v); }), values.end());
  double lo = values.empty() ? (axis.log ? 1.0 : 0.0) : *std::min_element(values.begin(), values.end());
  double hi = values.empty() ? (axis.log ? 10.0 : 1.0) : *std::max_element(values.begin(), values.end());
  if (zero_based && axis.include_zero && !axis.log && lo > 0) lo = 0;
  if (zero_based && axis.include_zero && !axis.log && hi < 0) hi = 0;
  if (finite(axis.min)) lo = axis.min;
  if (finite(axis.max)) hi = axis.max;
  if (hi <= lo) {
    const double pad = axis.log ? lo * 0.5 : std::max(std::fabs(lo) * 0.1, 1.0);
    hi = lo + pad;
    if (!axis.log) lo -= zero_based && lo == 0 ? 0 : pad;
  }
  Extent e{lo, hi, nice_ticks(lo, hi, 6, axis.log)};
  if (axis.integer && !axis.log) {  // whole numbers only: a step of at least 1
    e.ticks.erase(std::remove_if(e.ticks.begin(), e.ticks.end(), [](double t) { return t != std::round(t); }), e.ticks.end());
    if (e.ticks.size() < 2)
      for (double t = std::floor(lo); t <= std::ceil(hi) && e.ticks.size() < 64; ++t)
        if (std::find(e.ticks.begin(), e.ticks.end(), t) == e.ticks.end()) e.ticks.push_back(t);
    std::sort(e.ticks.begin(), e.ticks.end());
  }
  if (!e.ticks.empty()) {
    if (!finite(axis.min)) e.lo = std::min(e.lo, e.ticks.front());
    if (!finite(axis.max)) e.hi = std::max(e.hi, e.ticks.back());
  }
  e.ticks.erase(std::remove_if(e.ticks.begin(), e.ticks.end(),
                               [&](double t) { return t < e.lo - 1e-12 * std::fabs(e.hi - e.lo) || t > e.hi + 1e-12 * std::fabs(e.hi - e.lo); }),
                e.ticks.end());
  return e;
}

std::string num(double v) { return fmt::format("{:.1f}", v); }

std::string axis_label(double v, const Axis& a) { return tick_label(v * a.scale) + a.unit; }

// Where the legend's entries go (wrapping at the chart's width), and the top of the plot area below them.
struct LegendLayout {
  std::vector<std::pair<double, double>> at;  // x, baseline y of each entry
  int plot_top = 30;
};

LegendLayout legend_layout(int width, const std::vector<std::string>& names) {
  LegendLayout l;
  if (names.empty() || (names.size() == 1 && names[0].empty())) return l;
  double x = 12, y = 36;
  for (const auto& name : names) {
    const double w = 26 + 6.8 * static_cast<double>(name.size());
    if (x + w > width - 8 && x > 12) {
      x = 12;
      y += 16;
    }
    l.at.emplace_back(x, y);
    x += w;
  }
  l.plot_top = static_cast<int>(y) + 12;
  return l;
}

// The frame shared by both chart kinds: background, title and legend.
std::string header(int width, int height, const std::string& title, const std::vector<std::string>& names,
                   const std::vector<bool>& dashed, const std::vector<size_t>& colours = {}) {
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "role=\"img\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">"
      "<title>{}</title><rect width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
      width, height, width, height, html_escape(title), width, height);
  s += fmt::format("<text x=\"12\" y=\"18\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">{}</text>",
                   html_escape(title));
  const LegendLayout l = legend_layout(width, names);
  for (size_t i = 0; i < l.at.size(); ++i) {
    const auto [x, y] = l.at[i];
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"{}/>", num(x),
                     num(y - 4), num(x + 16), num(y - 4), series_colour(i < colours.size() ? colours[i] : i),
                     i < dashed.size() && dashed[i] ? " stroke-dasharray=\"5 3\"" : "");
    s += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#333\">{}</text>", num(x + 20), num(y), html_escape(names[i]));
  }
  return s;
}

std::string value_axis_vertical(const Extent& e, const Scale& sy, const Axis& a, double left, double right) {
  std::string s;
  for (double t : e.ticks) {
    const double y = sy(t);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e4e4e4\"/>", num(left), num(y), num(right), num(y));
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">{}</text>", num(left - 6), num(y + 4),
                     html_escape(axis_label(t, a)));
  }
  return s;
}

// An error bar from y0 to y1 with caps, dark so that it shows on every bar colour.
std::string error_bar_v(double x, double y0, double y1) {
  return fmt::format("<path d=\"M{0} {1}V{2}M{3} {1}H{4}M{3} {2}H{4}\" stroke=\"#333\" stroke-width=\"1.3\" fill=\"none\"/>",
                     num(x), num(y0), num(y1), num(x - 3), num(x + 3));
}

}  // namespace

Axis axis(std::string label, bool log) {
  Axis a;
  a.label = std::move(label);
  a.log = log;
  return a;
}

Axis percent_axis(std::string label, bool from_zero) {
  Axis a;
  a.label = std::move(label);
  if (from_zero) a.min = 0;
  a.unit.assign(1, '%');  // not = "%": GCC 12 warns falsely (-Wrestrict, its bug 105651)
  a.scale = 100;
  return a;
}

const char* series_colour(size_t i) { return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))]; }

std::vector<double> nice_ticks(double lo, double hi, int target, bool log) {
  std::vector<double> ticks;
  if (!(hi > lo) || !finite(lo) || !finite(hi)) return ticks;
  if (log) {
    if (lo <= 0) return ticks;
    const int a = static_cast<int>(std::floor(std::log10(lo) + 1e-9)), b = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
    for (int k = a; k <= std::max(b, a + 1); ++k) {
      ticks.push_back(std::pow(10.0, k));
      if (b - a <= 1 && k < std::max(b, a + 1)) {  // a single decade: 2 and 5 too
        ticks.push_back(2 * std::pow(10.0, k));
        ticks.push_back(5 * std::pow(10.0, k));
      }
    }
    return ticks;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const int k = static_cast<int>(std::floor(std::log10(raw)));
  const double mag = std::pow(10.0, k);
  double m = 10;
  for (double c : {1.0, 2.0, 5.0})
    if (c * mag >= raw) {
      m = c;
      break;
    }
  // Ticks are integers times m, over 10^-k when k < 0, so that 0.6 is 6/10 and not 3 x 0.2 = 0.6000000000000001.
  const double unit = m * (k >= 0 ? mag : 1.0), div = k >= 0 ? 1.0 : std::pow(10.0, -k);
  const auto first = static_cast<int64_t>(std::floor(lo * div / unit + 1e-9));
  const auto last = static_cast<int64_t>(std::ceil(hi * div / unit - 1e-9));
  for (int64_t i = first; i <= last && ticks.size() < 1000; ++i) ticks.push_back(static_cast<double>(i) * unit / div);
  return ticks;
}

std::string tick_label(double v) {
  const double a = std::fabs(v);
  if (a >= 1e9) return fmt::format("{:g}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:g}k", v / 1e3);
  if (a == 0) return "0";
  return fmt::format("{:.4g}", v);
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string LineChart::svg(int width, int height) const {
  std::vector<std::string> names;
  std::vector<bool> dashed;
  std::vector<size_t> colours;
  std::vector<double> xs, ys;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    names.push_back(s.name);
    dashed.push_back(s.dashed);
    colours.push_back(s.colour >= 0 ? static_cast<size_t>(s.colour) : i);
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
    ys.insert(ys.end(), s.lo.begin(), s.lo.end());
    ys.insert(ys.end(), s.hi.begin(), s.hi.end());
  }
  const int top = legend_layout(width, names).plot_top;
  std::string out = header(width, height, title, names, dashed, colours);
  const double left = 64, right = width - 16.0, bottom = height - 40.0;
  const Extent ex = extent_of(xs, x, false), ey = extent_of(ys, y, true);
  const Scale sx{ex.lo, ex.hi, left, right, x.log}, sy{ey.lo, ey.hi, bottom, static_cast<double>(top), y.log};
  out += value_axis_vertical(ey, sy, y, left, right);
  for (double t : ex.ticks)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text>", num(sx(t)),
                       num(bottom + 16), html_escape(axis_label(t, x)));
  out += fmt::format("<path d=\"M{} {}V{}H{}\" stroke=\"#888\" fill=\"none\"/>", num(left), num(top), num(bottom), num(right));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>", num((left + right) / 2),
                     num(height - 6.0), html_escape(x.label));
  out += fmt::format("<text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                     num((top + bottom) / 2), html_escape(y.label));
  auto ok = [&](double xv, double yv) { return finite(xv) && finite(yv) && (!x.log || xv > 0) && (!y.log || yv > 0); };
  for (size_t si = 0; si < series.size(); ++si) {
    const Series& s = series[si];
    const char* colour = series_colour(colours[si]);
    const size_t n = std::min(s.x.size(), s.y.size());
    if (s.line) {
      std::string d;
      bool pen = false;
      for (size_t i = 0; i < n; ++i) {
        if (!ok(s.x[i], s.y[i])) {
          pen = false;
          continue;
        }
        d += fmt::format("{}{} {}", pen ? "L" : "M", num(sx(s.x[i])), num(sy(s.y[i])));
        pen = true;
      }
      if (!d.empty())
        out += fmt::format("<path d=\"{}\" stroke=\"{}\" stroke-width=\"2\" fill=\"none\"{}/>", d, colour,
                           s.dashed ? " stroke-dasharray=\"5 3\"" : "");
    }
    for (size_t i = 0; i < n; ++i) {
      if (!ok(s.x[i], s.y[i])) continue;
      if (i < s.lo.size() && i < s.hi.size() && ok(s.x[i], s.lo[i]) && ok(s.x[i], s.hi[i]))
        out += error_bar_v(sx(s.x[i]), sy(s.lo[i]), sy(s.hi[i]));
      if (s.markers || !s.line)
        out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.2\" fill=\"{}\"/>", num(sx(s.x[i])), num(sy(s.y[i])), colour);
    }
  }
  return out + "</svg>";
}

std::string BarChart::svg(int width, int height) const {
  std::vector<std::string> names;
  std::vector<double> vs;
  for (const auto& s : series) {
    names.push_back(s.name);
    vs.insert(vs.end(), s.values.begin(), s.values.end());
    vs.insert(vs.end(), s.lo.begin(), s.lo.end());
    vs.insert(vs.end(), s.hi.begin(), s.hi.end());
  }
  const size_t nc = categories.size(), ns = std::max<size_t>(series.size(), 1);
  size_t longest = 0;
  for (const auto& c : categories) longest = std::max(longest, c.size());
  if (horizontal) {
    const double row = static_cast<double>(ns) * 12 + 8;
    const int top = legend_layout(width, names).plot_top;
    height = top + static_cast<int>(row * static_cast<double>(nc)) + 44;  // grows with the list
    std::string out = header(width, height, title, names, {});
    const double left = std::min(0.45 * width, 12 + 7.2 * static_cast<double>(longest)), right = width - 24.0;
    const auto fit = static_cast<size_t>((left - 12) / 7.2);  // characters that fit beside the bars
    const double bottom = top + row * static_cast<double>(nc);
    const Extent e = extent_of(vs, value, true);
    const Scale sv{e.lo, e.hi, left, right, value.log};
    for (double t : e.ticks) {
      out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#e4e4e4\"/>", num(sv(t)), top, num(bottom));
      out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text>", num(sv(t)),
                         num(bottom + 16), html_escape(axis_label(t, value)));
    }
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>", num((left + right) / 2),
                       num(bottom + 34), html_escape(value.label));
    const double base = value.log ? e.lo : std::max(e.lo, std::min(0.0, e.hi));
    for (size_t c = 0; c < nc; ++c) {
      const double y0 = top + row * static_cast<double>(c) + 4;
      // A name too long for the margin keeps its end (the distinctive part), the rest in its tooltip.
      const std::string& cat = categories[c];
      const std::string shown = cat.size() <= fit ? cat : "\u2026" + cat.substr(cat.size() - fit + 1);
      out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333\"><title>{}</title>{}</text>",
                         num(left - 6), num(y0 + row / 2), html_escape(cat), html_escape(shown));
      for (size_t si = 0; si < series.size(); ++si) {
        const BarSeries& s = series[si];
        if (c >= s.values.size() || !finite(s.values[c]) || (value.log && s.values[c] <= 0)) continue;
        const double a = sv(base), b = sv(s.values[c]), yb = y0 + 12 * static_cast<double>(si);
        out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"10\" fill=\"{}\"/>", num(std::min(a, b)),
                           num(yb), num(std::max(std::fabs(b - a), 0.8)), series_colour(si));
        if (c < s.lo.size() && c < s.hi.size() && finite(s.lo[c]) && finite(s.hi[c]) && (!value.log || s.lo[c] > 0))
          out += fmt::format("<path d=\"M{0} {1}H{2}M{0} {3}V{4}M{2} {3}V{4}\" stroke=\"#333\" stroke-width=\"1.3\" fill=\"none\"/>",
                             num(sv(s.lo[c])), num(yb + 5), num(sv(s.hi[c])), num(yb + 2), num(yb + 8));
      }
    }
    out += fmt::format("<path d=\"M{} {}V{}\" stroke=\"#888\"/>", num(sv(base)), top, num(bottom));
    return out + "</svg>";
  }
  const int top = legend_layout(width, names).plot_top;
  const bool rotate = nc > 0 && (6.8 * static_cast<double>(longest) > (width - 80.0) / static_cast<double>(nc));
  const double label_room = rotate ? std::min(140.0, 6.0 * static_cast<double>(longest) * 0.7 + 12) : 20;
  std::string out = header(width, height, title, names, {});
  const double left = 64, right = width - 16.0, bottom = height - 24.0 - label_room;
  const Extent e = extent_of(vs, value, true);
  const Scale sy{e.lo, e.hi, bottom, static_cast<double>(top), value.log};
  out += value_axis_vertical(e, sy, value, left, right);
  out += fmt::format("<text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                     num((top + bottom) / 2), html_escape(value.label));
  const double group = (right - left) / static_cast<double>(std::max<size_t>(nc, 1));
  const double bar = group * 0.8 / static_cast<double>(ns);
  const double base = value.log ? e.lo : std::max(e.lo, std::min(0.0, e.hi));
  for (size_t c = 0; c < nc; ++c) {
    const double gx = left + group * static_cast<double>(c) + group * 0.1;
    const double cx = left + group * (static_cast<double>(c) + 0.5);
    if (rotate)
      out += fmt::format("<text transform=\"translate({} {}) rotate(-35)\" text-anchor=\"end\" fill=\"#333\">{}</text>",
                         num(cx), num(bottom + 14), html_escape(categories[c]));
    else
      out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>", num(cx),
                         num(bottom + 16), html_escape(categories[c]));
    for (size_t si = 0; si < series.size(); ++si) {
      const BarSeries& s = series[si];
      if (c >= s.values.size() || !finite(s.values[c]) || (value.log && s.values[c] <= 0)) continue;
      const double x0 = gx + bar * static_cast<double>(si);
      const double a = sy(base), b = sy(s.values[c]);
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: {}</title></rect>",
                         num(x0), num(std::min(a, b)), num(std::max(bar - 1, 1.0)), num(std::max(std::fabs(b - a), 0.8)),
                         series_colour(si), html_escape(s.name.empty() ? categories[c] : s.name + " " + categories[c]),
                         html_escape(axis_label(s.values[c], value)));
      if (c < s.lo.size() && c < s.hi.size() && finite(s.lo[c]) && finite(s.hi[c]) && (!value.log || s.lo[c] > 0))
        out += error_bar_v(x0 + bar / 2, sy(s.lo[c]), sy(s.hi[c]));
    }
  }
  out += fmt::format("<path d=\"M{} {}V{}H{}\" stroke=\"#888\" fill=\"none\"/>", num(left), top, num(bottom), num(right));
  return out + "</svg>";
}

}  // namespace bitnet::report
