#pragma once
// Helpers for the model-file tests: temporary directories, whole-file reads, hex, and the gguf/safetensors
// oracle (tests/oracles/model_file_oracle.py run from the project venv).
#include <bitnet/error.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace bitnet::test {

// A fresh directory under /tmp, removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::vector<uint8_t> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
std::string to_hex(const void* data, size_t n);

// Runs `model_file_oracle.py command IN OUT` with IN holding `input`; returns OUT's bytes. Throws on failure.
std::vector<uint8_t> run_model_oracle(const std::string& command, const std::vector<uint8_t>& input);

// Runs `fn` and returns the bitnet::Error message it throws; fails the test if it throws nothing or anything else.
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const bitnet::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-bitnet exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error was thrown";
  return {};
}

// Runs a shell command (stderr merged into stdout); returns its output, its wait status in *status.
std::string run_command(const std::string& cmd, int* status);
// The built `bitnet` CLI with these arguments (BITNET_CLI), through run_command.
std::string run_cli(const std::string& args, int* status);

}  // namespace bitnet::test
