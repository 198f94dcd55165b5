// Perplexity over chunks of the context length (see perplexity.h).
#include <bitnet/perplexity.h>

#include <cmath>
#include <vector>

namespace bitnet {

PerplexityResult perplexity(Engine& engine, std::span<const int32_t> tokens, int64_t n_ctx,
                            const std::function<void(int64_t, int64_t, double)>& progress) {
  BITNET_CHECK(n_ctx >= 4 && n_ctx <= engine.context(), "[perplexity] n_ctx must be in [4, {}], got {}",
               engine.context(), n_ctx);
  const int64_t chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  BITNET_CHECK(chunks >= 1, "[perplexity] {} tokens are fewer than one chunk of {}", tokens.size(), n_ctx);
  const int64_t vocab = engine.model().config().vocab;
  const int64_t step = std::min<int64_t>(engine.max_batch(), n_ctx);
  std::vector<float> logits(static_cast<size_t>(step * vocab));
  std::vector<BatchToken> batch;
  PerplexityResult r;
  double total = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int32_t* chunk = tokens.data() + c * n_ctx;
    for (int64_t start = 0; start < n_ctx; start += step) {
      const int64_t end = std::min(start + step, n_ctx);
      batch.clear();
      for (int64_t i = start; i < end; ++i)
        batch.push_back({chunk[i], static_cast<int32_t>(i), 0, i >= n_ctx / 2 - 1 && i + 1 < n_ctx});
      engine.decode(batch, logits.data());
      // Logits at position i predict token i + 1; only positions in the second half (minus the last) are scored.
      int64_t row = 0;
      for (int64_t i = start; i < end; ++i) {
        if (!batch[static_cast<size_t>(i - start)].logits) continue;
        const float* l = logits.data() + row++ * vocab;
        double m = l[0];
        for (int64_t v = 1; v < vocab; ++v) m = std::max(m, static_cast<double>(l[v]));
        double z = 0;
        for (int64_t v = 0; v < vocab; ++v) z += std::exp(static_cast<double>(l[v]) - m);
        total += (m + std::log(z)) - l[chunk[i + 1]];
        ++r.scored_tokens;
      }
    }
    ++r.chunks;
    if (progress) progress(c + 1, chunks, std::exp(total / static_cast<double>(r.scored_tokens)));
  }
  r.mean_nll = total / static_cast<double>(r.scored_tokens);
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

}  // namespace bitnet
