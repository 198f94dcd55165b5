#pragma once
// Training a byte-level BPE tokenizer (the GPT-2 scheme) on text, and writing it where our Tokenizer, the PyPI
// `tokenizers` package and GGUF readers find it:
//   - pre-tokenization: GPT-2's regex (Hugging Face ByteLevel with use_regex, no prefix space);
//   - alphabet: the 256 bytes, spelled with GPT-2's byte-to-unicode map, so every text is encodable;
//   - merges: repeatedly the most frequent adjacent pair of symbols over the pre-tokenized words (ties: the
//     pair of smaller ids), until the vocabulary has vocab_size entries or no pair occurs min_frequency times;
//   - special tokens (e.g. "<|endoftext|>") are appended after the merges, as control tokens.
#include <bitnet/gguf.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitnet {

struct BpeTrainOptions {
  int32_t vocab_size = 4096;  // bytes + merges + special tokens
  int64_t min_frequency = 2;  // a pair seen fewer times is not merged
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
};

struct BpeVocabulary {
  std::vector<std::string> tokens;  // id order: byte-mapped strings (GPT-2 map); special tokens as plain text
  std::vector<std::string> merges;  // "left right" (byte-mapped), rank = index
  int32_t first_special = 0;        // ids >= this are the special tokens
  int32_t eos_id() const { return first_special < static_cast<int32_t>(tokens.size()) ? first_special : -1; }
};

// Learns merges from `text` (invalid UTF-8 is replaced by U+FFFD first, as the tokenizer does).
BpeVocabulary train_bpe(std::string_view text, const BpeTrainOptions& options = {});

// Hugging Face tokenizer.json text (model BPE, ByteLevel pre-tokenizer and decoder; the first special token is
// EOS and is not added by encode, so ids equal Tokenizer::encode(text, add_bos=false, ...)).
std::string bpe_tokenizer_json(const BpeVocabulary& vocab);
void write_bpe_tokenizer_json(const BpeVocabulary& vocab, const std::string& path);
// Reads back a byte-level BPE tokenizer.json that uses GPT-2's pre-tokenizer (as written above). Throws naming
// the file and field otherwise.
BpeVocabulary read_bpe_tokenizer_json(const std::string& path);

// The GGUF tokenizer.ggml.* keys llama.cpp and Tokenizer::from_gguf read: model "gpt2", pre "gpt-2", tokens,
// token_type, merges, eos_token_id, add_bos_token = false.
std::vector<std::pair<std::string, GgufValue>> bpe_gguf_keys(const BpeVocabulary& vocab);

}  // namespace bitnet
