// Weight quantizers: absmean ternary (1.58 bit), sign (1 bit), and symmetric / asymmetric 2, 4 and 8 bit, per
// tensor, per channel (row) or per group (along a row), with their dequantizers.
#include <bitnet/quant.h>

#include <algorithm>
#include <cmath>

namespace bitnet {

std::string_view granularity_name(Granularity g) {
  switch (g) {
    case Granularity::per_tensor: return "per_tensor";
    case Granularity::per_channel: return "per_channel";
    case Granularity::per_group: return "per_group";
  }
  return "?";
}

namespace {

// The contiguous element ranges that share one scale, in storage order.
struct Groups {
  int64_t count = 1;
  int64_t size = 0;  // elements per group; groups are consecutive in row-major order
};

Groups make_groups(int64_t rows, int64_t cols, Granularity g, int64_t group_size, std::string_view op) {
  BITNET_CHECK(rows > 0 && cols > 0, "[{}] weights must be non-empty, got {} x {}", op, rows, cols);
  switch (g) {
    case Granularity::per_tensor: return {1, rows * cols};
    case Granularity::per_channel: return {rows, cols};
    case Granularity::per_group:
      BITNET_CHECK(group_size > 0 && cols % group_size == 0,
                   "[{}] group size {} must be positive and divide the row length {}", op, group_size, cols);
      return {rows * cols / group_size, group_size};
  }
  return {};
}

double mean_abs(const float* p, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::fabs(static_cast<double>(p[i]));
  return s / static_cast<double>(n);
}

Tensor as_matrix(const Tensor& w, std::string_view op) {
  BITNET_CHECK(w.defined() && w.ndim() == 2 && is_floating(w.dtype()),
               "[{}] expects a 2-d float tensor [rows, cols], got {}", op, w.defined() ? w.str() : "undefined");
  return w.to(DType::f32).contiguous();
}

}  // namespace

TernaryWeights quantize_ternary(const float* w, int64_t rows, int64_t cols, Granularity granularity,
                                int64_t group_size) {
  const Groups groups = make_groups(rows, cols, granularity, group_size, "quantize_ternary");
  TernaryWeights out;
  out.granularity = granularity;
  out.group_size = granularity == Granularity::per_group ? group_size : 0;
  out.rows = rows;
  out.cols = cols;
  out.values.resize(static_cast<size_t>(rows * cols));
  out.scales.resize(static_cast<size_t>(groups.count));
  for (int64_t g = 0; g < groups.count; ++g) {
    const float* p = w + g * groups.size;
    const auto gamma = static_cast<float>(mean_abs(p, groups.size));
    // The reference multiplies by the reciprocal (w * (1 / gamma)), which rounds differently from w / gamma.
    const float s = 1.0f / std::max(gamma, 1e-5f);
    for (int64_t i = 0; i < groups.size; ++i) {
      const float r = std::nearbyint(p[i] * s);
      out.values[static_cast<size_t>(g * groups.size + i)] = static_cast<int8_t>(std::clamp(r, -1.0f, 1.0f));
    }
    out.scales[static_cast<size_t>(g)] = gamma;
  }
  return out;
}

QuantizedWeights quantize_weights(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec) {
  BITNET_CHECK(spec.bits == 1 || spec.bits == 2 || spec.bits == 4 || spec.bits == 8,
               "[quantize_weights] bits must be 1, 2, 4 or 8 (ternary has quantize_ternary), got {}", spec.bits);
  BITNET_CHECK(spec.bits != 1 || spec.symmetric, "[quantize_weights] 1-bit quantization is symmetric (sign)");
  const Groups groups = make_groups(rows, cols, spec.granularity, spec.group_size, "quantize_weights");
  QuantizedWeights out;
  out.spec = spec;
  out.rows = rows;
  out.cols = cols;
  out.codes.resize(static_cast<size_t>(rows * cols));
  out.scales.resize(static_cast<size_t>(groups.count));
  out.zero_points.resize(static_cast<size_t>(groups.count));
  if (spec.bits == 1) out.centers.resize(static_cast<size_t>(groups.count));
  const int levels = 1 << spec.bits;
  for (int64_t g = 0; g < groups.count; ++g) {
    const float* p = w + g * groups.size;
    uint8_t* codes = out.codes.data() + g * groups.size;
    const auto gi = static_cast<size_t>(g);
    if (spec.bits == 1) {
      // BitNet v1: sign(w - mean(w)) rescaled by mean|w|.
      double mean = 0;
      for (int64_t i = 0; i < groups.size; ++i) mean += p[i];
      const auto center = static_cast<float>(mean / static_cast<double>(groups.size));
      for (int64_t i = 0; i < groups.size; ++i) codes[i] = p[i] - center > 0.0f ? 1 : 0;
      out.scales[gi] = static_cast<float>(mean_abs(p, groups.size));
      out.centers[gi] = center;
      continue;
    }
    float lo = 0.0f, hi = 0.0f;  // the range always holds 0, so 0 is exact
    for (int64_t i = 0; i < groups.size; ++i) lo = std::min(lo, p[i]), hi = std::max(hi, p[i]);
    float scale;
    int zero_point;
    float qmin, qmax;
    if (spec.symmetric) {
      const float amax = std::max(-lo, hi);
      const int half = levels / 2;
      scale = amax > 0.0f ? amax / static_cast<float>(half - 1) : 1.0f;
      zero_point = half;
      qmin = static_cast<float>(-half);
      qmax = static_cast<float>(half - 1);
    } else {
      scale = hi > lo ? (hi - lo) / static_cast<float>(levels - 1) : 1.0f;
      zero_point = std::clamp(static_cast<int>(std::nearbyint(-lo / scale)), 0, levels - 1);
      qmin = static_cast<float>(-zero_point);
      qmax = static_cast<float>(levels - 1 - zero_point);
    }
    for (int64_t i = 0; i < groups.size; ++i) {
      const float q = std::clamp(std::nearbyint(p[i] / scale), qmin, qmax);
      codes[i] = static_cast<uint8_t>(static_cast<int>(q) + zero_point);
    }
    out.scales[gi] = scale;
    out.zero_points[gi] = zero_point;
  }
  return out;
}

TernaryWeights quantize_ternary(const Tensor& w, Granularity granularity, int64_t group_size) {
  const Tensor m = as_matrix(w, "quantize_ternary");
  return quantize_ternary(m.data_as<float>(), m.size(0), m.size(1), granularity, group_size);
}

QuantizedWeights quantize_weights(const Tensor& w, const QuantSpec& spec) {
  const Tensor m = as_matrix(w, "quantize_weights");
  return quantize_weights(m.data_as<float>(), m.size(0), m.size(1), spec);
}

Tensor dequantize(const TernaryWeights& q) {
  Tensor out = Tensor::empty({q.rows, q.cols});
  float* o = out.data_as<float>();
  const Groups groups = make_groups(q.rows, q.cols, q.granularity, q.group_size, "dequantize");
  for (int64_t i = 0; i < q.rows * q.cols; ++i)
    o[i] = static_cast<float>(q.values[static_cast<size_t>(i)]) * q.scales[static_cast<size_t>(i / groups.size)];
  return out;
}

Tensor dequantize(const QuantizedWeights& q) {
  Tensor out = Tensor::empty({q.rows, q.cols});
  float* o = out.data_as<float>();
  const Groups groups = make_groups(q.rows, q.cols, q.spec.granularity, q.spec.group_size, "dequantize");
  for (int64_t i = 0; i < q.rows * q.cols; ++i) {
    const auto g = static_cast<size_t>(i / groups.size);
    const int code = q.codes[static_cast<size_t>(i)];
    o[i] = q.spec.bits == 1 ? (code ? q.scales[g] : -q.scales[g])
                            : static_cast<float>(code - q.zero_points[g]) * q.scales[g];
  }
  return out;
}

}  // namespace bitnet
