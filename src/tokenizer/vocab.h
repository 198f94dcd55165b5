#pragma once
// What a tokenizer is built from, whichever file it came from (GGUF metadata or tokenizer.json).
#include <bitnet/tokenizer.h>

#include <string>
#include <vector>

namespace bitnet::tokenizer {

struct VocabData {
  std::vector<std::string> tokens;  // id order; BPE: byte-mapped strings, added tokens as plain text
  std::vector<float> scores;        // SentencePiece: one per token
  std::vector<TokenType> types;     // one per token
  std::vector<std::string> merges;  // BPE: "a b", rank = index
  std::vector<std::string> pre_patterns;  // BPE: pre-tokenizer regexes, applied in order
  std::string pre_name;                   // BPE: for messages
  bool ignore_merges = false;             // BPE: a piece that is a whole vocabulary entry is not merged
  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1;
  bool add_bos = false;
  bool add_space_prefix = true;  // SentencePiece
  std::string chat_template;
  std::string source;  // the file, for messages
};

// Checks sizes and ids (throws naming vocab.source) and builds the tokenizer of that kind.
std::unique_ptr<Tokenizer> make_bpe_tokenizer(VocabData&& v);
std::unique_ptr<Tokenizer> make_spm_tokenizer(VocabData&& v);

}  // namespace bitnet::tokenizer
