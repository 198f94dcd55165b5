// Tensor-level fake quantizers (quantize + dequantize) for QAT. The arithmetic follows the BitNet
// reference code in f32: the scale is formed as an inverse (127 / max|x|, 1 / mean|w|), the product is
// rounded half-to-even (torch.round), clamped, then divided by the same inverse.
#include <bitnet/qat.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "kernels/train.h"
#include "nn/quant_math.h"
#include "ops/ops_util.h"

namespace bitnet::nn {

namespace {
constexpr int64_t kChunk = 4096;  // elements per task of the per-tensor ternary path
using detail::kMinScale;
using detail::round_clamp;

QuantSpec make(QuantScheme scheme, int bits, Granularity g, int64_t group_size) {
  QuantSpec s{scheme, bits, g, group_size};
  s.validate();
  return s;
}

// One group of n values (in -> out).
void quantize_group(const float* in, float* out, int64_t n, const QuantSpec& spec) {
  switch (spec.scheme) {
    case QuantScheme::none:
      std::copy(in, in + n, out);
      return;
    case QuantScheme::binary: {
      double sum = 0.0, sum_abs = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        sum += in[i];
        sum_abs += std::fabs(in[i]);
      }
      const auto alpha = static_cast<float>(sum / static_cast<double>(n));
      const auto beta = static_cast<float>(sum_abs / static_cast<double>(n));
      for (int64_t i = 0; i < n; ++i) out[i] = in[i] - alpha > 0.0f ? beta : -beta;
      return;
    }
    case QuantScheme::ternary: {
      const float inv = detail::ternary_inverse_scale(in, n);
      for (int64_t i = 0; i < n; ++i) out[i] = round_clamp(in[i] * inv, -1.0f, 1.0f) / inv;
      return;
    }
    case QuantScheme::symmetric: {
      const auto qp = static_cast<float>((1 << (spec.bits - 1)) - 1);
      const auto qn = static_cast<float>(-(1 << (spec.bits - 1)));
      float amax = 0.0f;
      for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(in[i]));
      const float inv = qp / std::max(amax, kMinScale);
      for (int64_t i = 0; i < n; ++i) out[i] = round_clamp(in[i] * inv, qn, qp) / inv;
      return;
    }
    case QuantScheme::asymmetric: {
      const auto levels = static_cast<float>((1 << spec.bits) - 1);
      float lo = in[0], hi = in[0];
      for (int64_t i = 1; i < n; ++i) {
        lo = std::min(lo, in[i]);
        hi = std::max(hi, in[i]);
      }
      const float scale = std::max(hi - lo, kMinScale) / levels;
      const float zero = std::nearbyint(-lo / scale);
      for (int64_t i = 0; i < n; ++i)
        out[i] = (std::clamp(std::nearbyint(in[i] / scale) + zero, 0.0f, levels) - zero) * scale;
      return;
    }
  }
}
}  // namespace

QuantSpec QuantSpec::binary(Granularity g, int64_t group_size) { return make(QuantScheme::binary, 1, g, group_size); }
QuantSpec QuantSpec::ternary(Granularity g, int64_t group_size) {
  return make(QuantScheme::ternary, 2, g, group_size);
}
QuantSpec QuantSpec::symmetric(int bits, Granularity g, int64_t group_size) {
  return make(QuantScheme::symmetric, bits, g, group_size);
}
QuantSpec QuantSpec::asymmetric(int bits, Granularity g, int64_t group_size) {
  return make(QuantScheme::asymmetric, bits, g, group_size);
}

void QuantSpec::validate() const {
  if (scheme == QuantScheme::symmetric || scheme == QuantScheme::asymmetric)
    BITNET_CHECK(bits >= 2 && bits <= 16, "[quant] {} quantization needs 2..16 bits, got {}",
                 scheme == QuantScheme::symmetric ? "symmetric" : "asymmetric", bits);
  if (granularity == Granularity::per_group)
    BITNET_CHECK(group_size > 0, "[quant] per_group quantization needs a positive group_size, got {}", group_size);
}

std::string QuantSpec::str() const {
  std::string s;
  switch (scheme) {
    case QuantScheme::none: return "f32";
    case QuantScheme::binary: s = "binary"; break;
    case QuantScheme::ternary: s = "ternary"; break;
    case QuantScheme::symmetric: s = fmt::format("int{}", bits); break;
    case QuantScheme::asymmetric: s = fmt::format("int{}-asym", bits); break;
  }
  switch (granularity) {
    case Granularity::per_tensor: return s + "/per_tensor";
    case Granularity::per_row: return s + "/per_row";
    case Granularity::per_group: return s + fmt::format("/group{}", group_size);
  }
  return s;
}

QuantSpec QuantSpec::parse(const std::string& text) {
  const size_t slash = text.find('/');
  const std::string scheme = text.substr(0, slash), gran = slash == std::string::npos ? "" : text.substr(slash + 1);
  Granularity g = Granularity::per_tensor;
  int64_t group = 0;
  if (gran == "per_row") {
    g = Granularity::per_row;
  } else if (gran.rfind("group", 0) == 0) {
    g = Granularity::per_group;
    try {
      size_t used = 0;
      group = std::stoll(gran.substr(5), &used);
      BITNET_CHECK(used == gran.size() - 5, "");
    } catch (const std::exception&) {
      fail("[quant] '{}': the group size in '{}' is not a number", text, gran);
    }
  } else {
    BITNET_CHECK(gran.empty() || gran == "per_tensor",
                 "[quant] '{}': unknown granularity '{}' (expected per_tensor, per_row or group<N>)", text, gran);
  }
  if (scheme == "f32" || scheme == "none") return none();
  if (scheme == "binary") return binary(g, group);
  if (scheme == "ternary") return ternary(g, group);
  if (scheme.rfind("int", 0) == 0) {
    const bool asym = scheme.size() > 5 && scheme.substr(scheme.size() - 5) == "-asym";
    const std::string digits = scheme.substr(3, scheme.size() - 3 - (asym ? 5 : 0));
    BITNET_CHECK(!digits.empty() && digits.size() <= 2 && std::all_of(digits.begin(), digits.end(), ::isdigit),
                 "[quant] '{}': expected int<bits> or int<bits>-asym", text);
    const int bits = std::stoi(digits);
    return asym ? asymmetric(bits, g, group) : symmetric(bits, g, group);
  }
  fail("[quant] '{}': unknown scheme '{}' (expected f32, binary, ternary, int<b> or int<b>-asym)", text, scheme);
}

Tensor fake_quantize(const Tensor& x, const QuantSpec& spec) {
  spec.validate();
  BITNET_CHECK(x.defined() && is_floating(x.dtype()), "[fake_quantize] expects a float tensor, got {}",
               x.defined() ? x.str() : std::string("undefined"));
  BITNET_CHECK(x.ndim() >= 1, "[fake_quantize] expects at least 1 dim, got a scalar");
  const Tensor in = x.to(DType::f32).contiguous();
  Tensor out = Tensor::empty(in.shape());
  const int64_t n = in.numel();
  if (n == 0) return out;
  int64_t group = n;
  if (spec.granularity == Granularity::per_row) group = in.size(-1);
  if (spec.granularity == Granularity::per_group) {
    BITNET_CHECK(in.size(-1) % spec.group_size == 0,
                 "[fake_quantize] the last dim ({}) of {} must be a multiple of the group size ({})", in.size(-1),
                 in.str(), spec.group_size);
    group = spec.group_size;
  }
  const float* pi = in.data_as<float>();
  float* po = out.data_as<float>();
  if (spec.scheme == QuantScheme::ternary && group == n) {
    // One group (BitNet's per-tensor scale) would run on one thread in scalar code: after the scale, the
    // elements are independent, so they go through the train kernels in parallel chunks.
    const float inv = detail::ternary_inverse_scale(pi, n);
    const auto& k = kernels::train_kernels();
    parallel_for((n + kChunk - 1) / kChunk, [&k, pi, po, n, inv](int64_t c0, int64_t c1) {
      int8_t codes[kChunk];
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t b = c * kChunk, len = std::min(kChunk, n - b);
        k.ternary_codes(pi + b, len, inv, codes);
        k.codes_to_f32(codes, len, inv, po + b);
      }
    });
    return out;
  }
  // Groups are independent, so running them on several threads gives the same bits as running them in order.
  bitnet::detail::parallel_rows(n / group, group, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) quantize_group(pi + g * group, po + g * group, group, spec);
  });
  return out;
}

autograd::Var fake_quantize(const autograd::Var& x, const QuantSpec& spec, float lambda) {
  if (!spec.enabled() || lambda == 0.0f) return x;
  return autograd::straight_through(x, fake_quantize(x.value(), spec), lambda);
}

}  // namespace bitnet::nn
