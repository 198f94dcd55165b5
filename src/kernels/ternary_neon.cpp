// Arm NEON ternary kernel with the dot-product extension: `sdot` (4 int8 products summed into an int32 lane)
// on the unpacked codes {0, 1, 2} (valid signed bytes), the activation sum subtracted at the end. Tiles of R
// rows x T tokens as in the x86 variants; a 16-byte load covers a quarter of a 64-byte block.
#include <arm_neon.h>

#include "kernels/ternary.h"
#include "kernels/ternary_base3.h"

namespace bitnet::kernels::neon {

namespace {

template <int R, int T>
void tile(const TernaryGemmArgs& a, int64_t n0, int64_t t0) {
  const uint8x16_t mask = vdupq_n_u8(3);
  int32x4_t acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = vdupq_n_s32(0);
  const uint8_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = a.w + ternary_block_offset(n0 + r, 0, a.k_blocks);
  const int8_t* x = a.x + t0 * a.x_stride;
  for (int64_t b = 0; b < a.k_blocks; ++b) {
    for (int q = 0; q < 4; ++q) {  // bytes 16q .. 16q+15 of the block
      uint8x16_t packed[R];
      for (int r = 0; r < R; ++r) packed[r] = vld1q_u8(w[r] + b * kTernaryGroupStride + 16 * q);
      for (int s = 0; s < 4; ++s) {
        int8x16_t codes[R];
        for (int r = 0; r < R; ++r)
          codes[r] = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(packed[r], vdupq_n_s8(static_cast<int8_t>(-2 * s))), mask));
        for (int t = 0; t < T; ++t) {
          const int8x16_t xv = vld1q_s8(x + t * a.x_stride + b * kTernaryBlock + 64 * s + 16 * q);
          for (int r = 0; r < R; ++r) acc[r][t] = vdotq_s32(acc[r][t], codes[r], xv);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    float* y = a.y + (t0 + t) * a.y_stride + n0;
    const int32_t offset = a.x_sum[t0 + t];
    const float scale = a.scale[t0 + t];
    for (int r = 0; r < R; ++r) y[r] = static_cast<float>(vaddvq_s32(acc[r][t]) - offset) * scale;
  }
}

template <int R, int T>
void tile_tokens(const TernaryGemmArgs& a, int64_t n0, int64_t t0, int64_t tokens) {
  if constexpr (T > 0) {
    if (tokens == T) return tile<R, T>(a, n0, t0);
    return tile_tokens<R, T - 1>(a, n0, t0, tokens);
  }
}

template <int R>
void rows(const TernaryGemmArgs& a, int64_t n0) {
  constexpr int kT = 4;
  int64_t t = 0;
  for (; t + kT <= a.tokens; t += kT) tile<R, kT>(a, n0, t);
  if (t < a.tokens) tile_tokens<R, kT - 1>(a, n0, t, a.tokens - t);
}

void gemm(const TernaryGemmArgs& a) {
  int64_t n = a.row_begin;
  for (; n + 4 <= a.row_end; n += 4) rows<4>(a, n);
  for (; n < a.row_end; ++n) rows<1>(a, n);
}

}  // namespace

extern const TernaryKernels kTernaryKernels;
const TernaryKernels kTernaryKernels = {gemm, gemm_base3, ref::encode_base3, false};

}  // namespace bitnet::kernels::neon
