#pragma once
// Errors of the public API: one exception type whose message says what was wrong, where, and what was
// expected. Internal invariants use assert(); a library never aborts on bad user input.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace bitnet {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace bitnet

// Throws bitnet::Error with a formatted message when `cond` is false. Messages start with the op name in
// brackets, e.g. BITNET_CHECK(n > 0, "[matmul] k must be positive, got {}", n).
#define BITNET_CHECK(cond, ...)            \
  do {                                     \
    if (!(cond)) ::bitnet::fail(__VA_ARGS__); \
  } while (0)
