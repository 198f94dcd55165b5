#pragma once
// One sequence's generation state, shared by generate() (one sequence at a time) and the server (many sequences
// in one engine batch): the sampler chain, the token budget and the context limit, end-of-generation ids, stop
// strings held back until they can no longer match, and text released in whole UTF-8 characters. The caller
// owns the engine: it hands over the logits of the sequence's latest position and evaluates the token returned.
#include <bitnet/sampler.h>
#include <bitnet/tokenizer.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bitnet {

class Grammar;  // grammar.h
class GrammarMatcher;

struct SequenceOptions {
  int max_tokens = 128;            // < 0: until end of generation or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;   // stop strings (not included in the text; must not be empty)
  int top_logprobs = -1;           // >= 0: record each token's log-probability and this many alternatives
  bool ignore_eos = false;         // end-of-generation ids are never sampled (llama.cpp's --ignore-eos)
  std::shared_ptr<const Grammar> grammar;  // optional: the output must match it (GBNF or a JSON schema)
  // Context shift (llama.cpp's --keep): >= 0, a full context does not end the sequence; the caller shifts the
  // cache (Engine::shift_sequence: keep the first n_keep positions, forget half of the rest) when needs_shift()
  // says so, and reports it with shifted(). -1: the sequence ends when the context is full ("length").
  int64_t n_keep = -1;
};

// A generated token's log-probability under the model (log-softmax of the raw logits, before sampling) and the
// most likely alternatives at that position, best first.
struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};

class SequenceGenerator {
 public:
  // prompt_tokens: positions already in the cache; n_ctx: positions the sequence may use. Validates options
  // (throws bitnet::Error naming the bad value).
  SequenceGenerator(const Tokenizer& tokenizer, SequenceOptions options, int64_t prompt_tokens, int64_t n_ctx);
  ~SequenceGenerator();
  SequenceGenerator(SequenceGenerator&&) noexcept;

  // Samples the next token from the logits ([vocab] floats) of the latest position. Returns the token to
  // evaluate next (at position() - 1), or nothing once the sequence has ended (end of generation, a stop
  // string, the budget or the context).
  std::optional<int32_t> step(const float* logits, int64_t vocab);
  // Ends the sequence now with finish_reason "stop" (a client went away, or a callback said so); text still
  // held back is dropped. Does nothing once finished.
  void stop();

  // Text that became final since the last call: whole UTF-8 characters, never a stop string or a prefix of
  // one that may still complete. The rest is flushed when the sequence ends other than by a stop string.
  std::string take_text();
  // Log-probabilities of the tokens generated since the last call (only when options.top_logprobs >= 0).
  std::vector<TokenLogprob> take_logprobs();

  bool finished() const { return finished_; }
  const std::string& finish_reason() const { return finish_reason_; }  // "stop" or "length" once finished
  const std::string& stop_word() const { return stop_word_; }  // the stop string that ended it, if one did
  const std::vector<int32_t>& tokens() const { return tokens_; }      // generated ids (stop string's included)
  int64_t position() const { return prompt_tokens_ - shifted_ + static_cast<int64_t>(tokens_.size()); }
  // With n_keep >= 0: the token step() returned has no room (its position is the context); shift first.
  bool needs_shift() const { return opt_.n_keep >= 0 && !finished_ && position() - 1 >= n_ctx_; }
  // (keep, discard) for the shift needs_shift() asks for: llama.cpp's choice, half of what is not kept.
  std::pair<int64_t, int64_t> shift_plan() const;
  void shifted(int64_t discard) { shifted_ += discard; }

 private:
  void finish(const char* reason, bool flush);
  void record_logprobs(const float* logits, int64_t vocab, int32_t chosen);

  int32_t sample(const float* logits, int64_t vocab);

  const Tokenizer& tok_;
  SequenceOptions opt_;
  SamplerChain sampler_;
  std::unique_ptr<GrammarMatcher> grammar_;
  std::vector<int32_t> excluded_;  // never sampled: the tokenizer's unused ids, and its EOG ids with ignore_eos
  std::vector<uint8_t> allowed_;   // the grammar's token mask (grammar_match.cpp)
  int64_t prompt_tokens_, n_ctx_;
  int64_t shifted_ = 0;  // positions forgotten by context shifts
  std::vector<int32_t> tokens_;
  std::string pending_;   // decoded text not released yet
  std::string ready_;     // released text not taken yet
  std::vector<TokenLogprob> logprobs_;
  bool boundary_ = false;
  bool finished_ = false;
  std::string finish_reason_;
  std::string stop_word_;
};

}  // namespace bitnet
