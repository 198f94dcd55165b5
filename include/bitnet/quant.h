#pragma once
// Quantizers for BitNet b1.58 and friends: per-token int8 activations (absmax, optionally fused with RMSNorm),
// absmean ternary weights, 1/2/4/8-bit weights (symmetric or asymmetric, per tensor / channel / group) with
// their dequantizers, and the error metrics that say where quantization hurts.
#include <bitnet/memory.h>
#include <bitnet/tensor.h>
#include <bitnet/thread_pool.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace bitnet {

// ---------------------------------------------------------------------------------------------------------
// Activations: per token, s = 127 / max(max|x|, 1e-5); q = clamp(round_half_even(x * s), -128, 127).
// Rows are zero-padded to k_pad (a multiple of 256) so the ternary kernel can read whole blocks.
class QuantizedActivations {
 public:
  // Sizes the buffers (reusing them when large enough: no allocation in a decode loop after the first).
  void resize(int64_t tokens, int64_t k);
  int64_t tokens() const { return tokens_; }
  int64_t k() const { return k_; }
  int64_t k_pad() const { return k_pad_; }
  int8_t* row(int64_t t) { return q_.data() + t * k_pad_; }
  const int8_t* row(int64_t t) const { return q_.data() + t * k_pad_; }
  float* dequant() { return dequant_.data(); }            // per token: 1 / s = max|x| / 127
  const float* dequant() const { return dequant_.data(); }
  int32_t* sums() { return sums_.data(); }                // per token: sum of q
  const int32_t* sums() const { return sums_.data(); }

 private:
  int64_t tokens_ = 0, k_ = 0, k_pad_ = 0;
  AlignedVector<int8_t> q_;  // every row (k_pad is a multiple of 256) starts on a cache line
  std::vector<float> dequant_;
  std::vector<int32_t> sums_;
};

// x: tokens rows of k floats, x_stride floats apart.
// With a pool, tokens are split over its threads (the result is the same: rows are independent).
// scales, when given, receives each token's s (the training path divides by it, as the reference does).
void quantize_activations(const float* x, int64_t tokens, int64_t k, int64_t x_stride, QuantizedActivations& out,
                          ThreadPool* pool = nullptr, float* scales = nullptr);
// RMSNorm (y = (x / sqrt(mean(x^2) + eps)) * g) fused with the quantization: y is never written out.
void rms_norm_quantize_activations(const float* x, const float* g, float eps, int64_t tokens, int64_t k,
                                   int64_t x_stride, QuantizedActivations& out, ThreadPool* pool = nullptr);

// ---------------------------------------------------------------------------------------------------------
// Weight quantization.
enum class Granularity { per_tensor, per_channel, per_group };  // channel = output row; group = along a row
std::string_view granularity_name(Granularity g);

struct QuantSpec {
  int bits = 8;            // 1 (sign), 2, 4 or 8; ternary (1.58) has its own function below
  bool symmetric = true;   // asymmetric: a zero point per scale (not for 1 bit)
  Granularity granularity = Granularity::per_tensor;
  int64_t group_size = 0;  // per_group only: elements per group along a row (must divide the row length)
};

// Codes in [0, 2^bits) with value = (code - zero_point) * scale, one (scale, zero_point) per tensor, row or
// group. Symmetric: zero_point = 2^(bits-1), scale = max|w| / (2^(bits-1) - 1), codes clamped to the full
// range. Asymmetric: scale = (max - min) / (2^bits - 1). 1 bit (BitNet v1): value = sign(w - mean(w)) * mean|w|
// (code 1 = +, 0 = -; zero_point unused).
struct QuantizedWeights {
  QuantSpec spec;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;        // rows * cols
  std::vector<float> scales;         // one per tensor / row / group
  std::vector<int32_t> zero_points;  // same count
  std::vector<float> centers;        // 1 bit only: the mean subtracted before sign
};

// Ternary (1.58 bit) absmean: gamma = mean|w| over the tensor / row / group; w_t = clamp(round(w / max(gamma,
// 1e-5)), -1, 1); scale = gamma is the dequant multiplier (w ~ w_t * gamma), as BitNet b1.58 and 2B4T store it.
struct TernaryWeights {
  Granularity granularity = Granularity::per_tensor;
  int64_t group_size = 0;
  int64_t rows = 0, cols = 0;
  std::vector<int8_t> values;  // rows * cols, each -1, 0 or +1
  std::vector<float> scales;   // dequant multipliers, one per tensor / row / group
};

TernaryWeights quantize_ternary(const float* w, int64_t rows, int64_t cols,
                                Granularity granularity = Granularity::per_tensor, int64_t group_size = 0);
QuantizedWeights quantize_weights(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec);
// Tensor forms: w is a 2-D float tensor [rows, cols] (any view).
TernaryWeights quantize_ternary(const Tensor& w, Granularity granularity = Granularity::per_tensor,
                                int64_t group_size = 0);
QuantizedWeights quantize_weights(const Tensor& w, const QuantSpec& spec);
Tensor dequantize(const TernaryWeights& q);   // f32 [rows, cols]
Tensor dequantize(const QuantizedWeights& q);

// ---------------------------------------------------------------------------------------------------------
// Error metrics between a reference x and its approximation x_hat (same number of elements).
struct QuantError {
  double mse = 0;
  double sqnr_db = 0;         // 10 log10(sum x^2 / sum (x - x_hat)^2); +inf when exact
  double cosine = 0;          // <x, x_hat> / (|x| |x_hat|)
  double relative_error = 0;  // |x - x_hat| / |x|
};
QuantError quant_error(const Tensor& x, const Tensor& x_hat);

// Bits per weight of each storage format, scales included, for a row of `cols` weights.
struct PackingInfo {
  std::string_view name;
  double bits_per_weight;
};
std::vector<PackingInfo> packing_bits_per_weight(int64_t cols);

}  // namespace bitnet
