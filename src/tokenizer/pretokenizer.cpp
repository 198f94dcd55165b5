#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <bitnet/error.h>
#include <pcre2.h>

namespace bitnet::tokenizer {

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {
  for (const auto& p : patterns_) {
    int err = 0;
    PCRE2_SIZE off = 0;
    // UTF: patterns and subjects are UTF-8; UCP: \s \w \d and POSIX classes use Unicode properties, as the
    // Rust/Oniguruma regexes of Hugging Face tokenizers do.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), PCRE2_UTF | PCRE2_UCP, &err,
                                     &off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("[tokenizer] pre-tokenizer regex does not compile at offset {}: {} (pattern: {})", off,
           reinterpret_cast<const char*>(msg), p);
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is used if it fails
    auto c = std::make_unique<Compiled>();
    c->code = code;
    compiled_.push_back(std::move(c));
  }
}

RegexSplitter::~RegexSplitter() = default;

std::vector<std::string_view> RegexSplitter::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(text);
  for (const auto& c : compiled_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(c->code, nullptr);
    if (!md) fail("[tokenizer] out of memory for regex match data");
    std::vector<std::string_view> next;
    for (std::string_view piece : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t pos = 0, last = 0;
      while (pos < piece.size()) {
        // The subject was checked once (utf8_sanitize), so PCRE2's own UTF check is skipped.
        const int rc = pcre2_match(c->code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          pcre2_match_data_free(md);
          fail("[tokenizer] regex match failed with PCRE2 error {}", rc);
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) {  // an empty match splits nothing: step over one character
          pos = s + 1;
          while (pos < piece.size() && (static_cast<uint8_t>(piece[pos]) & 0xC0) == 0x80) ++pos;
          continue;
        }
        if (s > last) next.push_back(piece.substr(last, s - last));
        next.push_back(piece.substr(s, e - s));
        last = pos = e;
      }
      if (last < piece.size()) next.push_back(piece.substr(last));
    }
    pcre2_match_data_free(md);
    pieces = std::move(next);
  }
  return pieces;
}

std::vector<std::string> pretokenizer_patterns(std::string_view pre) {
  // GPT-2's pattern as its tokenizer.json (ByteLevel use_regex) has it.
  static const std::string kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  // Llama-3 (formats.md §3.1): llama.cpp's spelling of the tokenizer.json pattern with the (?i:...) group
  // written out as character classes.
  static const std::string kLlama3 =
      R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "falcon3")
    return {kLlama3};
  if (pre == "gpt-2" || pre == "gpt2" || pre == "phi-2") return {kGpt2};
  if (pre == "default" || pre.empty()) {
    // llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT for "gpt2" vocabularies without a known pre-tokenizer.
    return {R"([\p{P}\$\+<=>\^~\|]+)", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
            R"(\p{N}+)", R"([0-9][0-9][0-9])"};
  }
  return {};
}

}  // namespace bitnet::tokenizer
