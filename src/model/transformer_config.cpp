// The transformer shape the engine runs, and its consistency checks.
#include <bitnet/error.h>
#include <bitnet/model.h>

#include <cmath>

namespace bitnet {

TransformerConfig TransformerConfig::bitnet_2b4t() {
  TransformerConfig c;
  c.arch = "bitnet-b1.58";
  c.vocab = 128256;
  c.hidden = 2560;
  c.ffn = 6912;
  c.layers = 30;
  c.heads = 20;
  c.kv_heads = 5;
  c.head_dim = 128;
  c.context = 4096;
  c.norm_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  c.activation = FfnActivation::relu2;
  c.sub_norms = true;
  return c;
}

TransformerConfig TransformerConfig::tiny(int64_t vocab) {
  TransformerConfig c = bitnet_2b4t();
  c.vocab = vocab;
  c.hidden = 256;
  c.ffn = 768;
  c.layers = 4;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 64;
  c.context = 2048;
  c.rope_theta = 10000.0f;
  return c;
}

void TransformerConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    BITNET_CHECK(v > 0 && v < (int64_t{1} << 31), "[model] {} must be positive (and < 2^31), got {}", name, v);
  };
  positive(vocab, "vocab size");
  positive(hidden, "embedding length");
  positive(ffn, "feed-forward length");
  positive(layers, "block count");
  positive(heads, "head count");
  positive(kv_heads, "KV head count");
  positive(head_dim, "head dimension");
  positive(context, "context length");
  BITNET_CHECK(heads % kv_heads == 0, "[model] head count {} is not a multiple of the KV head count {}", heads,
               kv_heads);
  BITNET_CHECK(head_dim % 2 == 0, "[model] head dimension {} must be even for RoPE", head_dim);
  BITNET_CHECK(norm_eps > 0 && rope_theta > 0, "[model] RMSNorm epsilon and RoPE theta must be positive");
  BITNET_CHECK(rope_freq_factors.empty() || static_cast<int64_t>(rope_freq_factors.size()) == head_dim / 2,
               "[model] rope_freqs has {} factors; expected head_dim / 2 = {}", rope_freq_factors.size(), head_dim / 2);
  for (float f : rope_freq_factors)
    BITNET_CHECK(std::isfinite(f) && f > 0, "[model] rope_freqs holds {}; factors must be positive and finite", f);
  BITNET_CHECK(rope_freq_factors.empty() || rope_scaling.type == RopeType::none,
               "[model] both rope_freqs factors and {} RoPE scaling are given", rope_type_name(rope_scaling.type));
  (void)rope();  // parameter checks (factor > 0, ...)
}

RopeFrequencies TransformerConfig::rope(int64_t seq_len) const {
  RopeFrequencies r = rope_frequencies(rope_scaling, rope_theta, head_dim, context, seq_len);
  for (size_t i = 0; i < rope_freq_factors.size() && i < r.inv_freq.size(); ++i) r.inv_freq[i] /= rope_freq_factors[i];
  return r;
}

}  // namespace bitnet
