#pragma once
// Regex pre-tokenization through PCRE2 (UTF + UCP, so \p{L}, \s ... follow Unicode): each regex of the list
// splits every piece produced by the previous one into its matches and the gaps between them, both kept
// (Hugging Face's Split with behavior "Isolated").
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::tokenizer {

class RegexSplitter {
 public:
  // Throws bitnet::Error with PCRE2's message and offset when a pattern does not compile.
  explicit RegexSplitter(std::vector<std::string> patterns);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // `text` must be valid UTF-8. The pieces are views into it, in order, covering all of it.
  std::vector<std::string_view> split(std::string_view text) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  struct Compiled;
  std::vector<std::string> patterns_;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

// A llama.cpp pre-tokenizer (tokenizer.ggml.pre): its regexes and llama.cpp's settings for it.
struct PreTokenizerSpec {
  std::string name;
  std::vector<std::string> patterns;
  bool ignore_merges = false;  // a piece that is a whole vocabulary entry is not merged
  bool add_bos = false;        // llama.cpp's default for add_bos_token when the file does not say
  std::string unsupported;     // non-empty: why this engine cannot run it (a hand-written split, no byte encoding)
};
// nullopt when llama.cpp does not know the name either.
std::optional<PreTokenizerSpec> find_pretokenizer(std::string_view name);
std::vector<std::string> pretokenizer_names();  // the supported ones, for messages
// Patterns of a supported name ("" = "default"); empty when unknown or unsupported.
std::vector<std::string> pretokenizer_patterns(std::string_view pre_name);

}  // namespace bitnet::tokenizer
