#pragma once
// Runs tests/oracles/numpy_oracle.py in the project venv: bytes in, bytes out.
#include <optional>
#include <string>
#include <vector>

namespace bitnet::test {

// Why the oracle cannot run (no venv, no numpy), or empty when it can.
std::string oracle_unavailable_reason(const std::string& module = "numpy");

// Writes `input` to a temporary file, runs the oracle command, returns what it wrote. Throws on failure.
std::vector<char> run_oracle(const std::string& command, const std::vector<char>& input);

template <class T>
std::vector<char> as_bytes(const std::vector<T>& v) {
  const auto* p = reinterpret_cast<const char*>(v.data());
  return std::vector<char>(p, p + v.size() * sizeof(T));
}

}  // namespace bitnet::test

// Skips the current test with a visible message when the oracle's Python module is missing.
#define BITNET_REQUIRE_ORACLE(module)                                            \
  do {                                                                           \
    const std::string why = ::bitnet::test::oracle_unavailable_reason(module);   \
    if (!why.empty()) GTEST_SKIP() << "oracle unavailable: " << why;             \
  } while (0)
