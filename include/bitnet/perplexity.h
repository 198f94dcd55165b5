#pragma once
// Perplexity of a model on a token sequence, exactly as llama.cpp's `llama-perplexity` computes it (its
// perplexity() in tools/perplexity): the tokens (BOS first when the model adds one) are cut into chunks of n_ctx;
// each chunk is evaluated from an empty cache with its first token replaced by BOS (when there is one); the
// logits at positions n_ctx/2 .. n_ctx-2 of each chunk score the next token (n_ctx - n_ctx/2 - 1 tokens per
// chunk, each seeing at least n_ctx/2 tokens of context); the estimate after each chunk is exp(mean NLL), and
// the final one carries the standard error of the mean NLL, scaled by the perplexity.
#include <bitnet/engine.h>

#include <functional>
#include <span>
#include <vector>

namespace bitnet {

struct PerplexityResult {
  double perplexity = 0;
  double perplexity_error = 0;  // llama.cpp's "+/-": sqrt(var(NLL) / (count - 1)) * perplexity
  double mean_nll = 0;          // nats per token
  int64_t scored_tokens = 0;
  int64_t chunks = 0;
  std::vector<double> running;  // the estimate after each chunk (llama.cpp's "[i]x" line)
};

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int32_t bos = -1;         // put at the start of each chunk (llama.cpp does when the vocabulary adds BOS); -1: no
  int64_t max_chunks = -1;  // llama.cpp's --chunks: at most this many (-1: all)
};

// `tokens` must hold at least 2 * n_ctx tokens, as llama.cpp requires. progress(chunk, chunks, running
// perplexity) after each chunk; may be null.
PerplexityResult perplexity(Engine& engine, std::span<const int32_t> tokens, const PerplexityOptions& options,
                            const std::function<void(int64_t, int64_t, double)>& progress = nullptr);

}  // namespace bitnet
