// Perplexity over chunks of the context length, as llama-perplexity computes it (see perplexity.h).
#include <bitnet/perplexity.h>

#include <cmath>
#include <vector>

namespace bitnet {

namespace {
// -log p(token) from one row of logits, as llama.cpp's log_softmax: the max in float, the sum of expf(l - max)
// in double.
double negative_log_prob(const float* logits, int64_t vocab, int32_t token) {
  float max_logit = logits[0];
  for (int64_t v = 1; v < vocab; ++v) max_logit = std::max(max_logit, logits[v]);
  double sum_exp = 0.0;
  for (int64_t v = 0; v < vocab; ++v) sum_exp += std::exp(logits[v] - max_logit);
  return -(static_cast<double>(logits[token] - max_logit) - std::log(sum_exp));
}
}  // namespace

PerplexityResult perplexity(Engine& engine, std::span<const int32_t> tokens, const PerplexityOptions& o,
                            const std::function<void(int64_t, int64_t, double)>& progress) {
  const int64_t n_ctx = o.n_ctx;
  BITNET_CHECK(n_ctx >= 4 && n_ctx <= engine.context(), "[perplexity] n_ctx must be in [4, {}], got {}",
               engine.context(), n_ctx);
  BITNET_CHECK(static_cast<int64_t>(tokens.size()) >= 2 * n_ctx,
               "[perplexity] you need at least {} tokens to evaluate perplexity with a context of {} (the text has {})",
               2 * n_ctx, n_ctx, tokens.size());
  int64_t chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (o.max_chunks >= 0) chunks = std::min(chunks, o.max_chunks);
  BITNET_CHECK(chunks >= 1, "[perplexity] no chunk to evaluate (--chunks {})", o.max_chunks);
  const int64_t vocab = engine.model().config().vocab;
  BITNET_CHECK(o.bos < vocab, "[perplexity] BOS id {} is outside the vocabulary of {}", o.bos, vocab);
  const int64_t step = std::min<int64_t>(engine.max_batch(), n_ctx);
  const int64_t first = n_ctx / 2;
  std::vector<float> logits(static_cast<size_t>(step * vocab));
  std::vector<BatchToken> batch;
  PerplexityResult r;
  double nll = 0, nll2 = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int32_t* chunk = tokens.data() + c * n_ctx;
    for (int64_t start = 0; start < n_ctx; start += step) {
      const int64_t end = std::min(start + step, n_ctx);
      batch.clear();
      for (int64_t i = start; i < end; ++i) {
        const int32_t token = (i == 0 && o.bos >= 0) ? o.bos : chunk[i];
        batch.push_back({token, static_cast<int32_t>(i), 0, i >= first && i + 1 < n_ctx});
      }
      engine.decode(batch, logits.data());
      // Logits at position i predict token i + 1 (the text's token, never the BOS put in its place).
      int64_t row = 0;
      for (int64_t i = start; i < end; ++i) {
        if (!batch[static_cast<size_t>(i - start)].logits) continue;
        const double v = negative_log_prob(logits.data() + row++ * vocab, vocab, chunk[i + 1]);
        nll += v;
        nll2 += v * v;
        ++r.scored_tokens;
      }
    }
    ++r.chunks;
    r.running.push_back(std::exp(nll / static_cast<double>(r.scored_tokens)));
    if (progress) progress(c + 1, chunks, r.running.back());
  }
  const auto count = static_cast<double>(r.scored_tokens);
  r.mean_nll = nll / count;
  r.perplexity = std::exp(r.mean_nll);
  const double var = nll2 / count - r.mean_nll * r.mean_nll;
  r.perplexity_error = var > 0 && count > 1 ? std::sqrt(var / (count - 1)) * r.perplexity : 0.0;
  return r;
}

}  // namespace bitnet
