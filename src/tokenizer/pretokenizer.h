#pragma once
// Regex pre-tokenization through PCRE2 (UTF + UCP, so \p{L}, \s ... follow Unicode): each regex of the list
// splits every piece produced by the previous one into its matches and the gaps between them, both kept
// (Hugging Face's Split with behavior "Isolated").
#include <memory>
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

// Patterns of the llama.cpp pre-tokenizer names (tokenizer.ggml.pre); empty when the name is unknown.
std::vector<std::string> pretokenizer_patterns(std::string_view pre_name);

}  // namespace bitnet::tokenizer
