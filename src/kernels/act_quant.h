#pragma once
// Internal: per-token int8 activation quantization (BitNet b1.58's absmax formula), plain or fused with the
// RMSNorm that precedes every BitLinear. Every variant gives bit-identical results: max is exact, the sum of
// squares is accumulated in double in a fixed order of 16 partial sums (x^2 of an f32 is exact in double),
// and the elementwise float expressions are the same with FMA contraction off.
#include <cstdint>

#include "kernels/dispatch.h"

namespace bitnet::kernels {

inline constexpr float kActQuantMaxFloor = 1e-5f;  // max|x| is clamped to this before 127 / max

struct ActQuantKernels {
  float (*absmax)(const float* x, int64_t n);
  // q = clamp(round_half_even(x * s), -128, 127); returns sum(q).
  int32_t (*quantize)(const float* x, int64_t n, float s, int8_t* q);
  double (*sum_squares)(const float* x, int64_t n);
  // The same on y = (x * inv_rms) * g, never materialized.
  float (*absmax_normed)(const float* x, const float* g, float inv_rms, int64_t n);
  int32_t (*quantize_normed)(const float* x, const float* g, float inv_rms, int64_t n, float s, int8_t* q);
};

const Family<ActQuantKernels>& act_quant_family();

}  // namespace bitnet::kernels
