#include "numpy_oracle.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace bitnet::test {

std::string oracle_unavailable_reason(const std::string& module) {
  if (access(BITNET_PYTHON, X_OK) != 0)
    return std::string(BITNET_PYTHON) + " not found (run scripts/setup.sh)";
  const std::string cmd = std::string(BITNET_PYTHON) + " -c 'import " + module + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return "python module '" + module + "' is not installed in .venv";
  return {};
}

std::vector<char> run_oracle(const std::string& command, const std::vector<char>& input) {
  char in_path[] = "/tmp/bitnet_oracle_in_XXXXXX";
  char out_path[] = "/tmp/bitnet_oracle_out_XXXXXX";
  const int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path);
  if (in_fd < 0 || out_fd < 0) throw std::runtime_error("oracle: cannot create temporary files");
  close(in_fd);
  close(out_fd);
  {
    std::ofstream f(in_path, std::ios::binary);
    f.write(input.data(), static_cast<std::streamsize>(input.size()));
  }
  const std::string cmd = std::string(BITNET_PYTHON) + " " + BITNET_ORACLE_SCRIPT + " " + command + " " + in_path +
                          " " + out_path;
  const int rc = std::system(cmd.c_str());
  std::ifstream f(out_path, std::ios::binary);
  std::vector<char> out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::remove(in_path);
  std::remove(out_path);
  if (rc != 0) throw std::runtime_error("oracle command failed: " + cmd);
  return out;
}

}  // namespace bitnet::test
