#pragma once
// Text <-> token ids for the supported models (../shared/specs/formats.md §3): byte-level BPE (GPT-2, Llama-3;
// GGUF tokenizer.ggml.model = "gpt2" or a Hugging Face tokenizer.json) and SentencePiece with byte fallback
// (Llama-2; GGUF tokenizer.ggml.model = "llama"). Encoding follows llama.cpp / Hugging Face tokenizers so that
// ids match theirs exactly.
//
// Invalid UTF-8 in the input text is not an error: each maximal ill-formed subsequence is replaced by U+FFFD
// before tokenizing, the rule Python's bytes.decode("utf-8", errors="replace") uses, so ids equal those of the
// Python tokenizers package fed the decoded string.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

class GgufFile;
namespace tokenizer {
struct VocabData;  // src/tokenizer/vocab.h
}

// Token kinds, numbered as GGUF's tokenizer.ggml.token_type.
enum class TokenType : int32_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

enum class TokenizerKind { bpe, spm };

class Tokenizer {
 public:
  virtual ~Tokenizer();

  // From a GGUF file's tokenizer.ggml.* metadata (and tokenizer.chat_template). Throws bitnet::Error naming the
  // file and key when a key is missing or malformed, or the model / pre-tokenizer is not supported.
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& file);
  // From a Hugging Face tokenizer.json (a path to the file or to its directory); tokenizer_config.json beside it,
  // when present, supplies bos/eos, add_bos_token and chat_template.
  static std::unique_ptr<Tokenizer> from_hf(const std::string& path);
  // *.gguf -> from_gguf, anything else (tokenizer.json or a directory) -> from_hf.
  static std::unique_ptr<Tokenizer> load(const std::string& path);

  // Text -> ids. add_bos prepends the BOS id (when the vocabulary has one); parse_special lets control tokens
  // written in the text (e.g. "<|eot_id|>") become their ids; user-defined added tokens are always matched.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const = 0;
  // The bytes token `id` stands for (control tokens: their text). May be part of a UTF-8 sequence.
  virtual std::string token_to_piece(int32_t id) const = 0;
  // Ids -> bytes (not necessarily valid UTF-8 when the ids cut a character). skip_special drops control tokens.
  // SentencePiece: the space encode() put in front of the text (start, or after a control token) is removed.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // Appends what decode() gives for `id` at this point of a sequence. `boundary` is true at the start and after
  // a control token (where SentencePiece drops the one space encode() added) and is updated.
  void append_piece(std::string& out, int32_t id, bool skip_special, bool& boundary) const;

  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  TokenizerKind kind() const { return kind_; }
  const std::string& token_text(int32_t id) const;  // the vocabulary string (byte-mapped for BPE)
  TokenType token_type(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const;  // exact vocabulary string -> id

  int32_t bos_id() const { return bos_; }  // -1 when absent
  int32_t eos_id() const { return eos_; }
  int32_t eot_id() const { return eot_; }
  bool add_bos_default() const { return add_bos_; }  // what the model's files ask for
  // End of generation: EOS, EOT, EOM and the end-of-turn control tokens of the known chat formats.
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_; }
  // Ids of type "unused" (a padded vocabulary's [PAD] tokens), ascending: never sampled.
  const std::vector<int32_t>& unused_ids() const { return unused_; }
  // Adds an end-of-generation id the model's files name elsewhere (config.json / generation_config.json
  // eos_token_id lists). Throws for an id outside the vocabulary.
  void add_eog(int32_t id);
  // The Jinja chat template from the model's files; empty when it has none.
  const std::string& chat_template() const { return chat_template_; }
  // "gpt2/llama-bpe (128256 tokens)" etc., for messages.
  std::string describe() const;
  // A number no other Tokenizer object of this process has: the key of caches of data derived from the
  // vocabulary (the grammar's token trie), which an address could not be once an object is freed.
  uint64_t instance() const { return instance_; }

 protected:
  Tokenizer(TokenizerKind kind, tokenizer::VocabData&& vocab);
  void check_id(int32_t id) const;
  // Splits text into pieces of raw text and special-token ids (leftmost-longest match).
  struct Fragment {
    std::string_view text;  // raw text when id < 0
    int32_t id = -1;
  };
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;

  TokenizerKind kind_;
  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  int32_t bos_, eos_, eot_, unk_;
  bool add_bos_;
  bool add_space_prefix_;
  std::vector<int32_t> eog_;
  std::vector<int32_t> unused_;
  std::string chat_template_;
  std::string source_;
  std::string pre_name_;  // BPE pre-tokenizer name, for describe()
  uint64_t instance_;

 private:
  struct Index;
  std::shared_ptr<const Index> index_;  // text -> id and the special-token matcher
};

// Streaming detokenizer: feed ids as they are generated, get text that is always whole UTF-8 characters.
// Bytes of a character split across tokens are held until it completes; bytes that cannot start or continue a
// character come out as U+FFFD (one per maximal ill-formed subsequence).
class TokenStreamDecoder {
 public:
  explicit TokenStreamDecoder(const Tokenizer& tok, bool skip_special = false);
  std::string push(int32_t id);  // the complete UTF-8 text this token finishes (possibly empty)
  std::string flush();           // whatever is still held, an unfinished character as U+FFFD
  void reset();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  bool at_start_ = true;  // SentencePiece: strip the prefix space of the first text token
  std::string pending_;
};

// ---- UTF-8 helpers (exposed for tests and the chat layer) ----------------------------------------------------
// Replaces each maximal ill-formed subsequence by U+FFFD (as Python's errors="replace").
std::string utf8_sanitize(std::string_view bytes);
// Length of the longest prefix of `bytes` made of complete characters or ill-formed bytes that can never become
// valid, i.e. everything except an incomplete but so-far-valid sequence at the end.
size_t utf8_complete_prefix(std::string_view bytes);

}  // namespace bitnet
