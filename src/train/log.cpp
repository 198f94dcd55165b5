// Training reports: progress line, CSV log (resumable), SVG loss plot.
#include <bitnet/error.h>
#include <bitnet/report.h>
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
  BITNET_CHECK(std::getline(in, line) && (line == TrainLog::kHeader || line == TrainLog::kHeaderV1),
               "[train log] '{}' does not start with the header '{}'", path, TrainLog::kHeader);
  const size_t fields = line == TrainLog::kHeader ? 9 : 8;
  std::vector<LogRow> rows;
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, ',');) f.push_back(field);
    if (!line.empty() && line.back() == ',') f.emplace_back();
    BITNET_CHECK(f.size() == fields, "[train log] '{}' line {}: expected {} fields, got {}", path, n, fields, f.size());
    LogRow r;
    r.step = static_cast<int64_t>(parse_number(f[0], path, n));
    r.loss = parse_number(f[1], path, n);
    r.val_loss = parse_number(f[2], path, n);
    r.lr = parse_number(f[3], path, n);
    r.weight_decay = parse_number(f[4], path, n);
    r.grad_norm = parse_number(f[5], path, n);
    r.tokens_per_s = parse_number(f[6], path, n);
    r.elapsed_s = parse_number(f[7], path, n);
    if (fields == 9) r.flip_fraction = parse_number(f[8], path, n);
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
      << number(r.elapsed_s) << ',' << number(r.flip_fraction) << '\n';
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
  report::LineChart c;
  c.title = title;
  c.x.label = "step";
  c.y.label = "loss (nats)";
  report::Series train{"train", {}, {}, {}, {}, false, false, true};
  report::Series val{"validation", {}, {}, {}, {}, true, false, true};
  for (const LogRow& r : rows) {
    train.x.push_back(static_cast<double>(r.step));
    train.y.push_back(r.loss);
    if (std::isfinite(r.val_loss)) {
      val.x.push_back(static_cast<double>(r.step));
      val.y.push_back(r.val_loss);
    }
  }
  c.series.push_back(std::move(train));
  if (!val.x.empty()) c.series.push_back(std::move(val));
  return c.svg(720, 400);
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
