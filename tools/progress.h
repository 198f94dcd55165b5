#pragma once
// One updating progress line on stderr for work that takes a while: a bar, done/total, the rate and the time
// left. It appears only when stderr is a terminal and the work has run for 2 s (short work and logs stay clean:
// no control characters in a pipe), and clears itself when done.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace bitnet::cli {

class Progress {
 public:
  Progress(std::string label, std::string unit);
  ~Progress();  // ends the line if one was drawn
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of `total` units finished; `detail` is shown after the figures (e.g. a tensor name, a running value).
  void update(int64_t done, int64_t total, std::string_view detail = {});

 private:
  std::string label_, unit_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
  bool enabled_;
  bool shown_ = false;
};

}  // namespace bitnet::cli
