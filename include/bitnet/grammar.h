#pragma once
// Constrained output: llama.cpp's GBNF grammar language (and JSON Schema, converted to it), matched against the
// text a sequence generates so that only tokens that keep it a prefix of a sentence of the grammar are sampled.
//
// GBNF, as llama.cpp's grammars/README.md defines it:
//   root   ::= "{" ws pair ("," ws pair)* "}"      # rules; `root` is where a sentence starts
//   pair   ::= [a-z]+ ws ":" ws ( "true" | "false" )
//   ws     ::= [ \t\n]*
// Terminals are "strings" (escapes \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH), character classes [a-z0-9_]
// and [^"\\], and `.` (any character). Items group with ( ), alternate with |, and repeat with * + ? {m} {m,}
// {m,n}. `#` starts a comment. A rule ends at the end of its line unless a ( ) group or a trailing | continues it.
// Matching is over Unicode code points: a token may end inside a UTF-8 character, and the grammar then checks
// that some completion of it can match.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

class Tokenizer;

namespace grammar {
struct Rules;  // the parsed form (src/runtime/grammar_rules.h)
}

class Grammar {
 public:
  // Throws bitnet::Error "[grammar] SOURCE:LINE:COLUMN: what is wrong" for a syntax error, an undefined rule, a
  // missing `root`, left recursion (which could never be matched) or a grammar past the size limits.
  static std::shared_ptr<const Grammar> parse(std::string_view gbnf, std::string_view source = "grammar");
  // JSON Schema (the text of a schema) -> GBNF -> Grammar. Throws naming the schema keyword it cannot honour.
  static std::shared_ptr<const Grammar> from_json_schema(std::string_view schema, std::string_view source = "json_schema");
  // Any JSON value (OpenAI's response_format json_object).
  static std::shared_ptr<const Grammar> any_json();

  const std::string& gbnf() const { return gbnf_; }  // the grammar's text (the converted one for a schema)
  const grammar::Rules& rules() const { return *rules_; }

  Grammar(std::string gbnf, std::shared_ptr<const grammar::Rules> rules);

 private:
  std::string gbnf_;
  std::shared_ptr<const grammar::Rules> rules_;
};

// JSON Schema -> GBNF text (see docs/structured-output.md for the keywords honoured). Throws bitnet::Error naming
// the keyword and its place in the schema ("#/properties/age/minimum") for anything it cannot enforce.
std::string json_schema_to_gbnf(std::string_view schema_json, std::string_view source = "json_schema");

// Where one sequence stands in a grammar: the text accepted so far is a prefix of some sentence.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);
  ~GrammarMatcher();
  GrammarMatcher(GrammarMatcher&&) noexcept;
  GrammarMatcher& operator=(GrammarMatcher&&) noexcept;

  // Advances over `bytes` (UTF-8, possibly cut inside a character). Returns false and leaves the state as it was
  // when the grammar does not allow them.
  bool accept(std::string_view bytes);
  // Whether accept(bytes) would succeed, without advancing.
  bool allows(std::string_view bytes) const;
  bool can_end() const;   // the text so far is a whole sentence of the grammar
  bool must_end() const;  // ... and nothing can follow it
  void reset();           // back to the empty text

  // Token constraint for sampling: allowed[id] = 1 for each token whose text may come next, 0 otherwise (resized
  // to the tokenizer's vocabulary). Control tokens are allowed only when they end generation and can_end().
  // Walks a trie of the vocabulary's pieces, so tokens sharing a refused prefix are refused together.
  void allowed_tokens(const Tokenizer& tokenizer, std::vector<uint8_t>& allowed) const;
  // Whether token `id` may come next (the same rule for one token: what the sampler tries first).
  bool allows_token(const Tokenizer& tokenizer, int32_t id) const;
  // Advances over token `id` (end-of-generation tokens leave the state as it is). False when not allowed.
  bool accept_token(const Tokenizer& tokenizer, int32_t id);

  struct State;  // stacks of grammar positions and a partial UTF-8 character (grammar_match.cpp)

 private:
  std::shared_ptr<const Grammar> grammar_;
  std::unique_ptr<State> state_;
};

}  // namespace bitnet
