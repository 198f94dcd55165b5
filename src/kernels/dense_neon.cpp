// NEON dense kernels: int8 with `sdot` on the weights turned back into s8 (u8 ^ 0x80 = w); int4 with `sdot`
// on the nibbles (u in [0, 15]) from the groups' -8 sum(x), each group's dot in its own lane (dense.h); f16
// with vcvt + FMA.
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

// One row group (4 rows; past the matrix's last row, its zero padding) and one token. A row's 16 bytes of a
// super-block vector are its 4 groups' lanes (dense.h): `sdot` of the low nibbles with step v's activations and
// of the high ones with step v + 4's adds 4 weights to each group's dot, which starts from the group offset
// -8 sum(x). After the 8 steps, one conversion and one FMA by the row's 4 scales.
void gemm_i4(const DenseI4Args& a) {
  const uint8x16_t nibble = vdupq_n_u8(0x0f);
  constexpr int64_t kScaleStride = kDenseI8RowGroup * kDenseI4SuperBlock / kDenseI4Group;
  const int64_t blocks = a.k_pad / kDenseI4SuperBlock, groups = a.k_pad / kDenseI4Group;
  for (int64_t n0 = a.row_begin / kDenseI8RowGroup * kDenseI8RowGroup; n0 < a.row_end; n0 += kDenseI8RowGroup) {
    const uint8_t* w = a.w + dense_i4_offset(n0, 0, a.k_pad);
    const uint16_t* sc = a.scales + dense_i4_scale_index(n0, 0, a.k_pad);
    for (int64_t t = 0; t < a.tokens; ++t) {
      float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
      for (int64_t b = 0; b < blocks; ++b) {
        const int8_t* x = a.x_steps + t * a.k_pad + b * kDenseI4SuperBlock;
        int8x16_t xs[kDenseI4Steps];
        for (int i = 0; i < kDenseI4Steps; ++i) xs[i] = vld1q_s8(x + kDenseI4StepBytes * i);
        const int32x4_t offsets = vld1q_s32(a.x_offsets + t * groups + 4 * b);
        for (int r = 0; r < 4; ++r) {
          int32x4_t d_lo = offsets, d_hi = vdupq_n_s32(0);
          for (int v = 0; v < 4; ++v) {
            const uint8x16_t packed = vld1q_u8(w + b * kDenseI4GroupStride + 64 * v + kDenseI4StepBytes * r);
            d_lo = vdotq_s32(d_lo, vreinterpretq_s8_u8(vandq_u8(packed, nibble)), xs[v]);
            d_hi = vdotq_s32(d_hi, vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), xs[v + 4]);
          }
          const float32x4_t s = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sc + b * kScaleStride + 4 * r)));
          acc[r] = vfmaq_f32(acc[r], vcvtq_f32_s32(vaddq_s32(d_lo, d_hi)), s);
        }
      }
      for (int r = 0; r < 4; ++r) {
        const int64_t n = n0 + r;
        if (n >= a.row_begin && n < a.row_end) a.y[t * a.y_stride + n] = vaddvq_f32(acc[r]) * a.dequant[t];
      }
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
