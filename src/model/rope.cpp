// RoPE inverse frequencies, step for step as transformers' modeling_rope_utils.py computes them (float32 tensors
// there, float here; the scalar parameters in double as Python's floats are).
#include <bitnet/error.h>
#include <bitnet/rope.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

namespace bitnet {

namespace {

constexpr RopeType kTypes[] = {RopeType::none, RopeType::linear, RopeType::llama3, RopeType::yarn, RopeType::dynamic};

// 1 / base^(2i / dim) in float32, as `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`.
std::vector<float> default_inv_freq(double base, int64_t dim) {
  std::vector<float> f(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    f[static_cast<size_t>(i)] = 1.0f / std::pow(static_cast<float>(base), exponent);
  }
  return f;
}

void check_factor(const RopeScaling& s) {
  BITNET_CHECK(std::isfinite(s.factor) && s.factor > 0.0, "[rope] {} scaling factor must be positive and finite, got {}",
               rope_type_name(s.type), s.factor);
}

std::vector<float> llama3_inv_freq(const RopeScaling& s, double theta, int64_t dim) {
  check_factor(s);
  BITNET_CHECK(s.original_context > 0, "[rope] llama3 scaling needs original_max_position_embeddings");
  BITNET_CHECK(s.high_freq_factor != s.low_freq_factor && s.low_freq_factor > 0 && s.high_freq_factor > 0,
               "[rope] llama3 scaling needs positive, different low_freq_factor ({}) and high_freq_factor ({})",
               s.low_freq_factor, s.high_freq_factor);
  std::vector<float> f = default_inv_freq(theta, dim);
  const double old_len = static_cast<double>(s.original_context);
  const double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
  const float factor = static_cast<float>(s.factor);
  for (float& x : f) {
    const float wavelen = static_cast<float>(2.0 * std::numbers::pi) / x;
    float llama = wavelen > low_wavelen ? x / factor : x;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    if (medium) {
      const float smooth = static_cast<float>((old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor));
      llama = (1.0f - smooth) * llama / factor + smooth * llama;
    }
    x = llama;
  }
  return f;
}

}  // namespace

double yarn_get_mscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

double yarn_attention_factor(const RopeScaling& s) {
  if (s.attention_factor) return *s.attention_factor;
  if (s.mscale != 0.0 && s.mscale_all_dim != 0.0)
    return yarn_get_mscale(s.factor, s.mscale) / yarn_get_mscale(s.factor, s.mscale_all_dim);
  return yarn_get_mscale(s.factor);
}

std::string_view rope_type_name(RopeType type) {
  switch (type) {
    case RopeType::linear: return "linear";
    case RopeType::llama3: return "llama3";
    case RopeType::yarn: return "yarn";
    case RopeType::dynamic: return "dynamic";
    case RopeType::none: break;
  }
  return "default";
}

std::optional<RopeType> parse_rope_type(std::string_view name) {
  for (RopeType t : kTypes)
    if (name == rope_type_name(t)) return t;
  return std::nullopt;
}

std::string rope_type_list() {
  std::string s;
  for (RopeType t : kTypes) s += (s.empty() ? "" : ", ") + std::string(rope_type_name(t));
  return s;
}

std::string RopeScaling::describe() const {
  switch (type) {
    case RopeType::none: return "default";
    case RopeType::linear: return fmt::format("linear (factor {})", factor);
    case RopeType::dynamic: return fmt::format("dynamic (factor {})", factor);
    case RopeType::llama3:
      return fmt::format("llama3 (factor {}, original context {}, low/high freq factor {}/{})", factor, original_context,
                         low_freq_factor, high_freq_factor);
    case RopeType::yarn:
      return fmt::format("yarn (factor {}, original context {}, beta fast/slow {}/{}{})", factor, original_context,
                         beta_fast, beta_slow, attention_factor ? fmt::format(", attention factor {}", *attention_factor) : "");
  }
  return "default";
}

RopeFrequencies rope_frequencies(const RopeScaling& s, double theta, int64_t head_dim, int64_t max_position,
                                 int64_t seq_len) {
  BITNET_CHECK(head_dim > 0 && head_dim % 2 == 0, "[rope] head dimension must be positive and even, got {}", head_dim);
  BITNET_CHECK(std::isfinite(theta) && theta > 0.0, "[rope] rope_theta must be positive and finite, got {}", theta);
  RopeFrequencies r;
  switch (s.type) {
    case RopeType::none:
      r.inv_freq = default_inv_freq(theta, head_dim);
      break;
    case RopeType::linear:
      check_factor(s);
      r.inv_freq = default_inv_freq(theta, head_dim);
      for (float& x : r.inv_freq) x /= static_cast<float>(s.factor);
      break;
    case RopeType::llama3:
      r.inv_freq = llama3_inv_freq(s, theta, head_dim);
      break;
    case RopeType::dynamic: {
      check_factor(s);
      BITNET_CHECK(max_position > 0, "[rope] dynamic scaling needs max_position_embeddings");
      // transformers: seq_len = max(seq_len, max_position_embeddings); base *= (f*L/M - (f-1))^(d/(d-2)).
      const double len = static_cast<double>(std::max(seq_len, max_position)), m = static_cast<double>(max_position);
      const double d = static_cast<double>(head_dim);
      const double base = theta * std::pow(s.factor * len / m - (s.factor - 1.0), d / (d - 2.0));
      r.inv_freq = default_inv_freq(base, head_dim);
      break;
    }
    case RopeType::yarn: {
      check_factor(s);
      const int64_t original = s.original_context > 0 ? s.original_context : max_position;
      BITNET_CHECK(original > 0, "[rope] yarn scaling needs original_max_position_embeddings");
      const double dim = static_cast<double>(head_dim);
      r.attention_factor = static_cast<float>(yarn_attention_factor(s));
      auto correction_dim = [&](double rotations) {
        return dim * std::log(static_cast<double>(original) / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(theta));
      };
      double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
      if (s.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, dim - 1.0);
      if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp
      const std::vector<float> extrapolation = default_inv_freq(theta, head_dim);
      r.inv_freq.resize(extrapolation.size());
      for (size_t i = 0; i < extrapolation.size(); ++i) {
        // pos_freqs = base^(2i/d); interpolation = 1 / (factor * pos_freqs), both float32.
        const float pos_freq = std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / static_cast<float>(dim));
        const float interpolation = 1.0f / (static_cast<float>(s.factor) * pos_freq);
        const float ramp = std::clamp(static_cast<float>((static_cast<double>(i) - low) / (high - low)), 0.0f, 1.0f);
        const float extrapolation_factor = 1.0f - ramp;
        r.inv_freq[i] = interpolation * (1.0f - extrapolation_factor) + (1.0f / pos_freq) * extrapolation_factor;
      }
      break;
    }
  }
  return r;
}

std::vector<float> llama3_rope_factors(const RopeScaling& s, double theta, int64_t head_dim) {
  BITNET_CHECK(s.type == RopeType::llama3, "[rope] rope_freqs factors are for llama3 scaling, not {}",
               rope_type_name(s.type));
  const std::vector<float> base = default_inv_freq(theta, head_dim), scaled = llama3_inv_freq(s, theta, head_dim);
  std::vector<float> factors(base.size());
  for (size_t i = 0; i < base.size(); ++i) factors[i] = base[i] / scaled[i];
  return factors;
}

}  // namespace bitnet
