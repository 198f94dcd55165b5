#pragma once
// Training text -> token ids through a tokenizer (tokenizer.json or GGUF); kept apart from run.cpp because the
// Arm cross build has no tokenizer (no PCRE2) and links text_tokens_without_tokenizer.cpp instead.
#include <cstdint>
#include <string>
#include <vector>

namespace bitnet::train {

// The file's text through the tokenizer at `tokenizer_path` (no BOS; special-token text is not parsed, so a
// literal "<|endoftext|>" in the corpus stays text). Throws in builds without the tokenizer (the Arm build).
std::vector<int32_t> tokenize_text_file(const std::string& text_path, const std::string& tokenizer_path);
// The vocabulary size of the tokenizer at `tokenizer_path`.
int64_t tokenizer_vocab_size(const std::string& tokenizer_path);

}  // namespace bitnet::train
