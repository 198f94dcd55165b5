// Training text through the project's tokenizer.
#include "train/text_tokens.h"

#include <bitnet/error.h>
#include <bitnet/tokenizer.h>

#include <fstream>
#include <sstream>

namespace bitnet::train {

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BITNET_CHECK(in.good(), "[train] cannot open '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

std::vector<int32_t> tokenize_text_file(const std::string& text_path, const std::string& tokenizer_path) {
  const auto tok = Tokenizer::load(tokenizer_path);
  return tok->encode(read_all(text_path), /*add_bos=*/false, /*parse_special=*/false);
}

int64_t tokenizer_vocab_size(const std::string& tokenizer_path) { return Tokenizer::load(tokenizer_path)->vocab_size(); }

}  // namespace bitnet::train
