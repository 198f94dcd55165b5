#pragma once
// Fake quantizers for quantization-aware training: quantize, then dequantize back to f32, so the forward
// pass sees exactly the values the low-bit model will compute with, while the latent f32 weights keep
// learning through the straight-through estimator (see ../shared/specs/training.md §1.1 and §4).
//
// Groups run along the last axis: per_row is one scale per row of the last axis (per output channel of a
// weight [out, in], per token of an activation [..., d]); per_group splits each row into groups of
// `group_size` consecutive elements.
#include <bitnet/autograd.h>
#include <bitnet/tensor.h>

#include <string>

namespace bitnet::nn {

enum class QuantScheme : uint8_t {
  none,       // full precision: fake_quantize is the identity
  binary,     // 1 bit, BitNet v1: sign(w - mean(w)) * mean|w|
  ternary,    // 1.58 bit, BitNet b1.58: clamp(round(w / mean|w|), -1, 1) * mean|w|
  symmetric,  // b bits: clamp(round(x * Qp / max|x|), -2^(b-1), Qp) * max|x| / Qp, Qp = 2^(b-1) - 1
  asymmetric  // b bits: s = (max - min) / (2^b - 1), z = round(-min / s), clamp(round(x / s) + z, 0, 2^b - 1)
};
enum class Granularity : uint8_t { per_tensor, per_row, per_group };

struct QuantSpec {
  QuantScheme scheme = QuantScheme::none;
  int bits = 0;  // 1 binary, 2 ternary (stored in 2 bits, 1.58 of information), 2..8 for the integer schemes
  Granularity granularity = Granularity::per_tensor;
  int64_t group_size = 0;  // per_group only

  static QuantSpec none() { return {}; }
  static QuantSpec binary(Granularity g = Granularity::per_tensor, int64_t group_size = 0);
  static QuantSpec ternary(Granularity g = Granularity::per_tensor, int64_t group_size = 0);
  static QuantSpec symmetric(int bits, Granularity g = Granularity::per_tensor, int64_t group_size = 0);
  static QuantSpec asymmetric(int bits, Granularity g = Granularity::per_tensor, int64_t group_size = 0);
  // BitNet b1.58's activations: 8-bit absmax per token.
  static QuantSpec int8_per_token() { return symmetric(8, Granularity::per_row); }

  bool enabled() const { return scheme != QuantScheme::none; }
  std::string str() const;  // e.g. "ternary/per_tensor", "int4-asym/group128"
  // The inverse of str(): "f32" (or "none"), "binary", "ternary", "int<b>", "int<b>-asym", each optionally
  // followed by "/per_tensor" (the default), "/per_row" or "/group<N>". Throws naming the bad part.
  static QuantSpec parse(const std::string& text);
  void validate() const;    // throws bitnet::Error on an impossible combination
  bool operator==(const QuantSpec&) const = default;
};

// Quantize-dequantize `x` (any float tensor, at least 1-D) under `spec`; the result is f32 of x's shape.
// Scales are clamped below at 1e-5 (as the BitNet reference code does) so an all-zero group stays zero.
Tensor fake_quantize(const Tensor& x, const QuantSpec& spec);

// The same in the autograd graph, with the straight-through estimator: the forward value is
// x + lambda * (Q(x) - x) and the gradient passes to x unchanged. lambda phases quantization in (1 = full).
autograd::Var fake_quantize(const autograd::Var& x, const QuantSpec& spec, float lambda = 1.0f);

}  // namespace bitnet::nn
