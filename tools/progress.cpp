// The progress line (see progress.h).
#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace bitnet::cli {

namespace {
std::string clock_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}
}  // namespace

Progress::Progress(std::string label, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), enabled_(isatty(STDERR_FILENO) != 0) {}

Progress::~Progress() {
  if (shown_) std::fputs("\n", stderr);
}

void Progress::update(int64_t done, int64_t total, std::string_view detail) {
  if (!enabled_ || total <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (elapsed < 2.0) return;
  // At most ten redraws a second, and always the last one.
  if (shown_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  shown_ = true;
  constexpr int kWidth = 24;
  const double frac = static_cast<double>(done) / static_cast<double>(total);
  const int fill = static_cast<int>(kWidth * frac);
  const double rate = done > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const std::string eta = done > 0 && done < total ? "ETA " + clock_text(static_cast<double>(total - done) / rate)
                                                   : "took " + clock_text(elapsed);
  fmt::print(stderr, "\r\033[K{} [{}{}] {:3.0f}% {}/{} {}, {:.2f} {}/s, {}{}{}", label_, std::string(fill, '#'),
             std::string(kWidth - fill, ' '), 100 * frac, done, total, unit_, rate, unit_, eta,
             detail.empty() ? "" : "  ", detail);
  std::fflush(stderr);
}

}  // namespace bitnet::cli
