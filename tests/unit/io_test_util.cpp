#include "io_test_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

namespace bitnet::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/bitnet_io_test_XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("cannot create a temporary directory");
  path_ = tmpl;
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::string to_hex(const void* data, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

std::vector<uint8_t> run_model_oracle(const std::string& command, const std::vector<uint8_t>& input) {
  TempDir dir;
  const std::string in = dir.file("in"), out = dir.file("out");
  write_file(in, input);
  const std::string cmd = std::string(BITNET_PYTHON) + " " + BITNET_MODEL_ORACLE_SCRIPT + " " + command + " " + in +
                          " " + out;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("oracle command failed: " + cmd);
  return read_file(out);
}

std::string run_command(const std::string& cmd, int* status) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("cannot run: " + cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

std::string run_cli(const std::string& args, int* status) {
  return run_command(std::string(BITNET_CLI) + " " + args + " 2>&1", status);
}

}  // namespace bitnet::test
