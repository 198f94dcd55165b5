// Internal: the body of the train kernel family, included once per ISA file with BITNET_VARIANT set to its
// namespace (ref, avx2, avx512, neon). Plain loops: the file's target flags decide the vector width, and
// `omp simd` asks for vectorization without -ffast-math. No include guard on purpose.
#include <cmath>
#include <cstdint>

#include "kernels/train.h"

namespace bitnet::kernels::BITNET_VARIANT {
namespace {

// round half to even by the 1.5 * 2^23 trick (exact for |v| < 2^22), after limiting v to [-2, 2].
inline float ternary_code(float v) {
  v = v < -2.0f ? -2.0f : (v > 2.0f ? 2.0f : v);
  const float r = (v + 0x1.8p23f) - 0x1.8p23f;
  return r < -1.0f ? -1.0f : (r > 1.0f ? 1.0f : r);
}

void ternary_codes(const float* w, int64_t n, float inv, int8_t* codes) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) codes[i] = static_cast<int8_t>(static_cast<int32_t>(ternary_code(w[i] * inv)));
}

void codes_to_f32(const int8_t* q, int64_t n, float inv, float* out) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(q[i]) / inv;
}

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWArgs& a) {
  const float decay = a.decay, one_minus_b1 = a.one_minus_b1, b2 = a.b2, one_minus_b2 = a.one_minus_b2;
  const float bc2_sqrt = a.bc2_sqrt, eps = a.eps, step_size = a.step_size;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] + one_minus_b1 * (gi - m[i]);  // torch: exp_avg.lerp_(grad, 1 - beta1)
    const float vi = b2 * v[i] + one_minus_b2 * gi * gi;
    const float denom = std::sqrt(vi) / bc2_sqrt + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * (mi / denom);
  }
}

}  // namespace

extern const TrainKernels kTrainKernels;
const TrainKernels kTrainKernels = {ternary_codes, codes_to_f32, adamw};

}  // namespace bitnet::kernels::BITNET_VARIANT
