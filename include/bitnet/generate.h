#pragma once
// Text generation on top of the engine: encode, prefill, sample token by token, stop on any end-of-generation
// id, a user stop string, the token budget or the context; text is delivered in whole UTF-8 characters and
// never includes a stop string (or a prefix of one that may still complete).
#include <bitnet/engine.h>
#include <bitnet/sampler.h>
#include <bitnet/sequence_generator.h>
#include <bitnet/tokenizer.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

struct GenerateOptions {
  int max_tokens = 128;            // < 0: until end of generation or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;   // stop strings (not included in the output)
  bool ignore_eos = false;         // end-of-generation ids are never sampled (llama.cpp's --ignore-eos)
  std::shared_ptr<const Grammar> grammar;  // optional: the output must match it (grammar.h)
  int64_t n_keep = -1;             // >= 0: context shift when full, keeping this many first positions (--keep)
  bool add_bos = true;             // prepend BOS when the tokenizer has one and its files ask for it
  bool parse_special = true;       // control tokens written in the prompt become their ids
  int top_logprobs = -1;           // >= 0: record each generated token's log-probability and this many alternatives
  int seq = 0;                     // the engine's sequence slot
  // Optional: the tokens the engine's cache already holds for `seq` (positions 0..n-1), e.g. the previous turns
  // of a chat. Only the prompt tokens past the common prefix are evaluated; on return it holds the tokens now
  // in the cache (prompt and generated ones).
  std::vector<int32_t>* cached = nullptr;
};

struct GenerateResult {
  std::string text;
  std::vector<int32_t> tokens;     // generated ids (the stop string's tokens included)
  std::string finish_reason;       // "stop" (end of generation or a stop string) or "length"
  int prompt_tokens = 0;
  int reused_tokens = 0;           // prompt tokens found in options.cached (not evaluated again)
  int context_shifts = 0;          // times the context was full and half of it was forgotten (n_keep >= 0)
  std::vector<TokenLogprob> logprobs;  // one per generated token when options.top_logprobs >= 0
  double prompt_seconds = 0;
  double generate_seconds = 0;
};

// on_text receives text as it becomes final; returning false stops generation (finish_reason "stop").
GenerateResult generate(Engine& engine, const Tokenizer& tokenizer, std::string_view prompt,
                        const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text = nullptr);

// Length of the longest prefix of `s` made of whole UTF-8 sequences (a token may end inside a character).
size_t complete_utf8_prefix(std::string_view s);

}  // namespace bitnet
