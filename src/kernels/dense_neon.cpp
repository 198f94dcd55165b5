// NEON dense kernels: int8 with `sdot` on the weights turned back into s8 (u8 ^ 0x80 = w), f16 with
// vcvt + FMA.
#include <arm_neon.h>

#include "kernels/dense.h"

namespace bitnet::kernels::neon {

namespace {

void gemm_i8(const DenseI8Args& a) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (int64_t n = a.row_begin; n < a.row_end; ++n)
    for (int64_t t = 0; t < a.tokens; ++t) {
      int32x4_t acc = vdupq_n_s32(0);
      for (int64_t k = 0; k < a.k_pad; k += 16) {
        const int8x16_t w = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a.w + dense_i8_offset(n, k, a.k_pad)), flip));
        acc = vdotq_s32(acc, w, vld1q_s8(a.x + t * a.x_stride + k));
      }
      a.y[t * a.y_stride + n] = static_cast<float>(vaddvq_s32(acc)) * a.scale[t] * a.row_scale[n];
    }
}

void gemm_f16(const DenseF16Args& a) {
  for (int64_t n = a.row_begin; n < a.row_end; ++n)
    for (int64_t t = 0; t < a.tokens; ++t) {
      const float* x = a.x + t * a.x_stride;
      const uint16_t* w = a.w + n * a.k_stride;
      float32x4_t acc = vdupq_n_f32(0.0f);
      int64_t k = 0;
      for (; k + 4 <= a.k; k += 4)
        acc = vfmaq_f32(acc, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + k))), vld1q_f32(x + k));
      float s = vaddvq_f32(acc);
      for (; k < a.k; ++k) s += vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(w[k]))), 0) * x[k];
      a.y[t * a.y_stride + n] = s;
    }
}

}  // namespace

extern const DenseKernels kDenseKernels;
const DenseKernels kDenseKernels = {gemm_i8, gemm_f16};

}  // namespace bitnet::kernels::neon
