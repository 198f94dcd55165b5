// Training text through the project's tokenizer.
#include "train/text_tokens.h"

#include <bitnet/error.h>
#include <bitnet/tokenizer.h>

#include <bitnet/files.h>
#include <bitnet/memory.h>
#include <fmt/format.h>

#include <filesystem>

namespace bitnet::train {

namespace {
// Only regular files, and no more than the machine can hold with their ids (text + int32 per token at most).
std::string read_all(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::is_regular_file(path, ec) ? std::filesystem::file_size(path, ec) : 0;
  check_memory_for(static_cast<uint64_t>(size) * 5, fmt::format("[train] the tokens of '{}'", path));
  return read_regular_file(path, uint64_t{1} << 40);
}
}  // namespace

std::vector<int32_t> tokenize_text_file(const std::string& text_path, const std::string& tokenizer_path) {
  const auto tok = Tokenizer::load(tokenizer_path);
  return tok->encode(read_all(text_path), /*add_bos=*/false, /*parse_special=*/false);
}

int64_t tokenizer_vocab_size(const std::string& tokenizer_path) { return Tokenizer::load(tokenizer_path)->vocab_size(); }

}  // namespace bitnet::train
