#pragma once
// Perplexity of a model on a token sequence, as llama.cpp's `perplexity` computes it: the text is cut into
// chunks of n_ctx tokens, each chunk is evaluated from an empty cache, and the negative log-likelihood of the
// tokens in the second half of each chunk (which all see at least n_ctx/2 tokens of context) is averaged.
#include <bitnet/engine.h>

#include <functional>
#include <span>

namespace bitnet {

struct PerplexityResult {
  double perplexity = 0;
  double mean_nll = 0;   // nats per token
  int64_t scored_tokens = 0;
  int64_t chunks = 0;
};

// progress(chunk, chunks, running perplexity) after each chunk; may be null.
PerplexityResult perplexity(Engine& engine, std::span<const int32_t> tokens, int64_t n_ctx,
                            const std::function<void(int64_t, int64_t, double)>& progress = nullptr);

}  // namespace bitnet
