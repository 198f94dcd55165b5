// Training reports: progress line, CSV log (resumable), SVG loss plot.
#include <bitnet/error.h>
#include <bitnet/train_log.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace bitnet::train {

namespace {
std::string number(double v) { return std::isnan(v) ? std::string() : fmt::format("{:.9g}", v); }

double parse_number(const std::string& field, const std::string& path, int line) {
  if (field.empty()) return NAN;
  try {
    size_t used = 0;
    const double v = std::stod(field, &used);
    if (used == field.size()) return v;
  } catch (const std::exception&) {
  }
  fail("[train log] '{}' line {}: '{}' is not a number", path, line, field);
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string clock(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}
}  // namespace

std::vector<LogRow> read_train_log(const std::string& path) {
  std::ifstream in(path);
  BITNET_CHECK(in.good(), "[train log] cannot open '{}'", path);
  std::string line;
  BITNET_CHECK(std::getline(in, line) && line == TrainLog::kHeader,
               "[train log] '{}' does not start with the header '{}'", path, TrainLog::kHeader);
  std::vector<LogRow> rows;
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, ',');) f.push_back(field);
    if (!line.empty() && line.back() == ',') f.emplace_back();
    BITNET_CHECK(f.size() == 8, "[train log] '{}' line {}: expected 8 fields, got {}", path, n, f.size());
    LogRow r;
    r.step = static_cast<int64_t>(parse_number(f[0], path, n));
    r.loss = parse_number(f[1], path, n);
    r.val_loss = parse_number(f[2], path, n);
    r.lr = parse_number(f[3], path, n);
    r.weight_decay = parse_number(f[4], path, n);
    r.grad_norm = parse_number(f[5], path, n);
    r.tokens_per_s = parse_number(f[6], path, n);
    r.elapsed_s = parse_number(f[7], path, n);
    rows.push_back(r);
  }
  return rows;
}

TrainLog::TrainLog(std::string csv_path, int64_t resume_step) : path_(std::move(csv_path)) {
  if (resume_step >= 0) {
    for (const LogRow& r : read_train_log(path_))
      if (r.step < resume_step) rows_.push_back(r);
  }
  std::ofstream out(path_, std::ios::trunc);
  BITNET_CHECK(out.good(), "[train log] cannot open '{}' for writing", path_);
  out << kHeader << '\n';
  out.close();
  for (const LogRow& r : rows_) append_line(r);
}

void TrainLog::append_line(const LogRow& r) const {
  std::ofstream out(path_, std::ios::app);
  out << r.step << ',' << number(r.loss) << ',' << number(r.val_loss) << ',' << number(r.lr) << ','
      << number(r.weight_decay) << ',' << number(r.grad_norm) << ',' << number(r.tokens_per_s) << ','
      << number(r.elapsed_s) << '\n';
  BITNET_CHECK(out.good(), "[train log] writing '{}' failed", path_);
}

void TrainLog::add(const LogRow& row) {
  rows_.push_back(row);
  append_line(row);
}

void TrainLog::write_svg(const std::string& path, const std::string& title) const {
  std::ofstream out(path, std::ios::trunc);
  BITNET_CHECK(out.good(), "[train log] cannot open '{}' for writing", path);
  out << render_loss_svg(rows_, title);
  BITNET_CHECK(out.good(), "[train log] writing '{}' failed", path);
}

std::string render_loss_svg(const std::vector<LogRow>& rows, const std::string& title) {
  constexpr double kW = 720, kH = 400, kLeft = 60, kRight = 20, kTop = 36, kBottom = 44;
  double x0 = 0, x1 = 1, y0 = INFINITY, y1 = -INFINITY;
  bool any = false;
  for (const LogRow& r : rows)
    for (double v : {r.loss, r.val_loss})
      if (std::isfinite(v)) {
        y0 = std::min(y0, v);
        y1 = std::max(y1, v);
        any = true;
      }
  if (!rows.empty()) {
    x0 = static_cast<double>(rows.front().step);
    x1 = static_cast<double>(rows.back().step);
  }
  if (x1 <= x0) x1 = x0 + 1;
  if (!any) y0 = 0, y1 = 1;
  if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
  const double pad = 0.05 * (y1 - y0);
  y0 = y0 >= 0.0 ? std::max(0.0, y0 - pad) : y0 - pad;  // a loss axis need not dip below zero
  y1 += pad;
  auto px = [&](double step) { return kLeft + (step - x0) / (x1 - x0) * (kW - kLeft - kRight); };
  auto py = [&](double v) { return kTop + (y1 - v) / (y1 - y0) * (kH - kTop - kBottom); };

  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n",
      kW, kH, kW, kH, kLeft, xml_escape(title));
  // Axes with five ticks each.
  s += fmt::format("<path d=\"M{} {} V{} H{}\" stroke=\"black\" fill=\"none\"/>\n", kLeft, kTop, kH - kBottom,
                   kW - kRight);
  for (int i = 0; i <= 4; ++i) {
    const double v = y0 + (y1 - y0) * i / 4.0, step = x0 + (x1 - x0) * i / 4.0;
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n", kLeft - 6, py(v) + 4, v);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:.0f}</text>\n", px(step),
                     kH - kBottom + 16, step);
  }
  s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">step</text>\n", (kLeft + kW - kRight) / 2,
                   kH - 8);
  auto line = [&](bool val, const char* color, const char* name, double legend_y) {
    std::string pts;
    int count = 0;
    for (const LogRow& r : rows) {
      const double v = val ? r.val_loss : r.loss;
      if (!std::isfinite(v)) continue;
      pts += fmt::format("{}{:.1f},{:.1f}", count++ ? " " : "", px(static_cast<double>(r.step)), py(v));
    }
    if (count == 0) return;
    s += fmt::format("<polyline class=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n", name,
                     pts, color);
    s += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\">{} loss</text>\n", kW - kRight - 110, legend_y, color,
                     val ? "validation" : "train");
  };
  line(false, "#1f77b4", "train", kTop + 12);
  line(true, "#ff7f0e", "validation", kTop + 28);
  s += "</svg>\n";
  return s;
}

std::string format_progress(int64_t steps_done, int64_t total_steps, double loss, double tokens_per_s,
                            double elapsed_s) {
  constexpr int kBar = 20;
  const double frac = total_steps > 0 ? std::clamp(static_cast<double>(steps_done) / total_steps, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(frac * kBar);
  const std::string bar = std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(kBar - filled), '.');
  const std::string rate = tokens_per_s >= 1e4 ? fmt::format("{:.1f}k", tokens_per_s / 1e3) : fmt::format("{:.0f}", tokens_per_s);
  const double eta = steps_done > 0 ? elapsed_s / steps_done * static_cast<double>(total_steps - steps_done) : NAN;
  return fmt::format("step {}/{} [{}] {:3.0f}% | loss {:.4f} | {} tok/s | {} elapsed | ETA {}", steps_done, total_steps,
                     bar, frac * 100.0, loss, rate, clock(elapsed_s), std::isnan(eta) ? std::string("?") : clock(eta));
}

}  // namespace bitnet::train
