// NEON dense kernels: int8 with `sdot` on the weights turned back into s8 (u8 ^ 0x80 = w); int4 with `sdot`
// on the nibbles minus 8 (s8 in [-8, 7]), one group of 32 per two `sdot`s; f16 with vcvt + FMA.
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

void gemm_i4(const DenseI4Args& a) {
  const uint8x16_t nibble = vdupq_n_u8(0x0f);
  const int8x16_t eight = vdupq_n_s8(8);
  constexpr int64_t kScaleStride = kDenseI8RowGroup * kDenseI4SuperBlock / kDenseI4Group;
  for (int64_t n = a.row_begin; n < a.row_end; ++n) {
    const uint8_t* w = a.w + dense_i4_offset(n, 0, a.k_pad);
    const uint16_t* sc = a.scales + dense_i4_scale_index(n, 0, a.k_pad);
    for (int64_t t = 0; t < a.tokens; ++t) {
      const int8_t* x = a.x + t * a.x_stride;
      float32x4_t acc = vdupq_n_f32(0.0f);
      for (int64_t b = 0; b < a.k_pad / kDenseI4SuperBlock; ++b) {
        const uint8_t* p = w + b * kDenseI4GroupStride;
        float s[4];
        vst1q_f32(s, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sc + b * kScaleStride))));
        const int8_t* xb = x + b * kDenseI4SuperBlock;
        for (int g = 0; g < 4; ++g) {
          // Group g: weights 32g .. 32g+31 are the low (g < 2) or high nibbles of bytes 32(g%2) .. +31.
          const uint8_t* q = p + 32 * (g % 2);
          uint8x16_t u0 = vld1q_u8(q), u1 = vld1q_u8(q + 16);
          if (g >= 2) {
            u0 = vshrq_n_u8(u0, 4);
            u1 = vshrq_n_u8(u1, 4);
          }
          const int8x16_t v0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(u0, nibble)), eight);
          const int8x16_t v1 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(u1, nibble)), eight);
          const int32x4_t dot = vdotq_s32(vdotq_s32(vdupq_n_s32(0), v0, vld1q_s8(xb + 32 * g)), v1, vld1q_s8(xb + 32 * g + 16));
          acc = vfmaq_n_f32(acc, vcvtq_f32_s32(dot), s[g]);
        }
      }
      a.y[t * a.y_stride + n] = vaddvq_f32(acc) * a.dequant[t];
    }
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
const DenseKernels kDenseKernels = {gemm_i8, gemm_f16, gemm_i4};

}  // namespace bitnet::kernels::neon
