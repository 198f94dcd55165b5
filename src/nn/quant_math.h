#pragma once
// Internal: the arithmetic shared by the fake quantizers (quantizer.cpp) and the int8 ternary linear
// (ternary_linear.cpp), so that both give the same bits: BitNet's rounding (torch.round, half to even) in
// plain float arithmetic the compiler can vectorize (std::nearbyint is a libm call on baseline x86-64), and
// the absmean scale of ternary weights.
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace bitnet::nn::detail {

inline constexpr float kMinScale = 1e-5f;  // the floor of max|x| and mean|w| before they are inverted

// Adding and subtracting 1.5 * 2^23 leaves the nearest integer (ties to even) for |v| < 2^22. Callers clamp
// v into a small range first.
inline float round_even(float v) { return (v + 0x1.8p23f) - 0x1.8p23f; }

// clamp(round(v), lo, hi) for the integer grid [lo, hi]: v is first limited to [lo - 1, hi + 1], which
// cannot change the clamped result and keeps it inside round_even's range.
inline float round_clamp(float v, float lo, float hi) {
  v = v < lo - 1.0f ? lo - 1.0f : v;
  v = v > hi + 1.0f ? hi + 1.0f : v;
  const float r = round_even(v);
  return r < lo ? lo : (r > hi ? hi : r);
}

// 1 / max(mean|w|, 1e-5) over n weights, the mean taken in double. Eight partial sums instead of one
// running sum: the loop is bound by the add's latency otherwise (a 4M-weight matrix took 4 ms), and the
// double sum rounded to float does not depend on the order unless it lands within 2^-29 of a tie.
inline float ternary_inverse_scale(const float* w, int64_t n) {
  double part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += std::fabs(w[i + j]);
  for (; i < n; ++i) part[0] += std::fabs(w[i]);
  const double sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  return 1.0f / std::max(static_cast<float>(sum / static_cast<double>(n)), kMinScale);
}

}  // namespace bitnet::nn::detail
