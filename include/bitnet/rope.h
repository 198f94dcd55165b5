#pragma once
// Rotary position embedding variants, with the inverse frequencies computed as Hugging Face transformers
// computes them (modeling_rope_utils.py, checked against transformers 5.x): "default", "linear", "llama3", "yarn"
// and "dynamic" (NTK). Config readers (HF config.json, GGUF metadata) fill RopeScaling; the engines ask
// rope_frequencies() for the table they rotate with.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

enum class RopeType : uint8_t { none, linear, llama3, yarn, dynamic };

// The name transformers uses ("default" for none), and its inverse; nullopt for any other name.
std::string_view rope_type_name(RopeType type);
std::optional<RopeType> parse_rope_type(std::string_view name);
std::string rope_type_list();  // "default, linear, llama3, yarn, dynamic" for messages

struct RopeScaling {
  RopeType type = RopeType::none;
  double factor = 1.0;                 // linear, llama3, yarn, dynamic
  int64_t original_context = 0;        // original_max_position_embeddings (llama3, yarn); 0 = not given
  double low_freq_factor = 1.0;        // llama3
  double high_freq_factor = 4.0;       // llama3
  std::optional<double> attention_factor;  // yarn: scales cos and sin; absent = derived from factor (and mscale)
  double beta_fast = 32.0, beta_slow = 1.0;  // yarn
  double mscale = 0.0, mscale_all_dim = 0.0;  // yarn (DeepSeek's variant of the attention factor)
  bool truncate = true;                // yarn: round the correction range outward

  bool operator==(const RopeScaling&) const = default;
  // A one-line description for `bitnet info`-style output and notes, e.g. "llama3 (factor 8, original 8192)".
  std::string describe() const;
};

struct RopeFrequencies {
  std::vector<float> inv_freq;   // [head_dim / 2]: angle(pos, i) = pos * inv_freq[i]
  float attention_factor = 1.0f;  // multiplies cos and sin (yarn), so q·k scales by its square
};

// The frequencies for rotating `head_dim`-wide heads with base `theta`. `max_position` is the model's
// max_position_embeddings (dynamic scaling and the yarn/llama3 default for the original context); `seq_len` is
// the length dynamic NTK scaling is computed for (transformers grows it with the longest sequence seen; below
// max_position it changes nothing). Throws bitnet::Error for impossible parameters (factor <= 0, ...).
RopeFrequencies rope_frequencies(const RopeScaling& scaling, double theta, int64_t head_dim, int64_t max_position,
                                 int64_t seq_len = 0);

// YaRN's magnitude correction 0.1 * mscale * ln(scale) + 1 (1 for scale <= 1), and the factor cos and sin are
// multiplied by: attention_factor when given, else from factor (and mscale / mscale_all_dim, DeepSeek's form).
double yarn_get_mscale(double scale, double mscale = 1.0);
double yarn_attention_factor(const RopeScaling& scaling);

// llama.cpp's form of llama3 scaling (convert_hf_to_gguf.py): per-frequency divisors, the `rope_freqs.weight`
// tensor of a GGUF file (inv_freq[i] = theta^(-2i/d) / factors[i]).
std::vector<float> llama3_rope_factors(const RopeScaling& scaling, double theta, int64_t head_dim);

}  // namespace bitnet
