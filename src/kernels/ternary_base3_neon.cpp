// Arm NEON (dot product) kernel of the base-3 layout (kernels/ternary_base3.h): each 16 bytes of weights are
// decoded by two 128-entry lookups (`tbl` over the first 64 entries, `tbx` over the next 64), each plane shifted
// down to codes {0, 1, 2} and multiplied with `sdot`. One to three tokens: tiles of 1 row x T tokens share the
// decode; more transcode each row group into the 2-bit layout once (gemm_base3_transcoded) for the 2-bit kernel.
#include <arm_neon.h>

#include "kernels/ternary_base3.h"

namespace bitnet::kernels::neon {

namespace {

struct Lookups {
  uint8x16x4_t lo0, lo1, hi0, hi1;
  Lookups()
      : lo0(vld1q_u8_x4(kBase3.lo.data())), lo1(vld1q_u8_x4(kBase3.lo.data() + 64)),
        hi0(vld1q_u8_x4(kBase3.hi.data())), hi1(vld1q_u8_x4(kBase3.hi.data() + 64)) {}
  // 128 entries: indices 64..127 are out of range for the first lookup (0) and in range, less 64, for the
  // second; indices 0..63 wrap to 192..255 in the second, which leaves them as they are.
  static uint8x16_t look(const uint8x16x4_t& t0, const uint8x16x4_t& t1, uint8x16_t i) {
    return vqtbx4q_u8(vqtbl4q_u8(t0, i), t1, vsubq_u8(i, vdupq_n_u8(64)));
  }
  uint8x16_t a(uint8x16_t v) const { return look(lo0, lo1, vandq_u8(v, vdupq_n_u8(127))); }
  uint8x16_t b(uint8x16_t v) const { return look(hi0, hi1, vshrq_n_u8(v, 1)); }
  // The five planes of 16 bytes, each shifted down to codes 0..2.
  void planes(uint8x16_t v, uint8x16_t p[kBase3Blocks]) const {
    const uint8x16_t m3 = vdupq_n_u8(3), A = a(v), B = b(v);
    p[0] = vandq_u8(A, m3);
    p[1] = vandq_u8(vshrq_n_u8(A, 2), m3);
    p[2] = vandq_u8(B, m3);
    p[3] = vandq_u8(vshrq_n_u8(B, 2), m3);
    p[4] = vshrq_n_u8(vaddq_u8(A, B), 5);  // p + q: bits 5-6, nothing above
  }
};

template <int T>
void tile(const TernaryGemmArgs& a, int64_t n, int64_t t0, const Lookups& lut) {
  const uint8x16_t m3 = vdupq_n_u8(3);
  int32x4_t acc[T];
  for (int t = 0; t < T; ++t) acc[t] = vdupq_n_s32(0);
  const int8_t* x = a.x + t0 * a.x_stride;
  auto feed = [&](uint8x16_t codes, int64_t k) {
    for (int t = 0; t < T; ++t)
      acc[t] = vdotq_s32(acc[t], vreinterpretq_s8_u8(codes), vld1q_s8(x + t * a.x_stride + k));
  };
  const int64_t supers = base3_superblocks(a.k_blocks);
  const uint8_t* w = a.w + base3_super_offset(n, 0, a.k_blocks);
  for (int64_t sb = 0; sb < supers; ++sb) {
    for (int64_t j = 0; j < kBase3SuperBytes; j += 16) {
      uint8x16_t p[kBase3Blocks];
      lut.planes(vld1q_u8(w + sb * kBase3GroupSuperStride + j / 64 * kBase3PieceStride + j % 64), p);
      for (int i = 0; i < kBase3Blocks; ++i) feed(p[i], sb * kBase3SuperWeights + j + i * kTernaryBlock);
    }
  }
  for (int64_t tb = 0; tb < base3_tail_blocks(a.k_blocks); ++tb) {
    const uint8_t* blk = a.w + base3_tail_offset(n, tb, a.k_blocks);
    const int64_t k = supers * kBase3SuperWeights + tb * kTernaryBlock;
    for (int q = 0; q < 4; ++q) {
      const uint8x16_t v = vld1q_u8(blk + 16 * q);
      feed(vandq_u8(v, m3), k + 16 * q);
      feed(vandq_u8(vshrq_n_u8(v, 2), m3), k + 64 + 16 * q);
      feed(vandq_u8(vshrq_n_u8(v, 4), m3), k + 128 + 16 * q);
      feed(vshrq_n_u8(v, 6), k + 192 + 16 * q);
    }
  }
  for (int t = 0; t < T; ++t)
    a.y[(t0 + t) * a.y_stride + n] = static_cast<float>(vaddvq_s32(acc[t]) - a.x_sum[t0 + t]) * a.scale[t0 + t];
}

// The superblocks of the 4 rows of the group at `src` in the 2-bit layout (gemm_base3_transcoded), 16 bytes at
// a time.
void transcode_group(const uint8_t* src, int64_t k_blocks, uint8_t* out, const Lookups& lut) {
  const int64_t supers = base3_superblocks(k_blocks);
  for (int64_t sb = 0; sb < supers; ++sb) {
    for (int64_t r = 0; r < kTernaryRowGroup; ++r) {
      for (int64_t j = 0; j < 64; j += 16) {
        uint8x16_t blk[kBase3Blocks];
        for (auto& b : blk) b = vdupq_n_u8(0);
        for (int q = 0; q < 4; ++q) {
          uint8x16_t p[kBase3Blocks];
          lut.planes(vld1q_u8(src + base3_super_offset(r, sb, k_blocks) + q * kBase3PieceStride + j), p);
          for (int i = 0; i < kBase3Blocks; ++i)
            blk[i] = vorrq_u8(blk[i], vshlq_u8(p[i], vdupq_n_s8(static_cast<int8_t>(2 * q))));
        }
        for (int i = 0; i < kBase3Blocks; ++i)
          vst1q_u8(out + ternary_block_offset(r, kBase3Blocks * sb + i, k_blocks) + j, blk[i]);
      }
    }
  }
}

template <int T>
void tile_tokens(const TernaryGemmArgs& a, int64_t n, int64_t t0, int64_t tokens, const Lookups& lut) {
  if constexpr (T > 0) {
    if (tokens == T) return tile<T>(a, n, t0, lut);
    return tile_tokens<T - 1>(a, n, t0, tokens, lut);
  }
}

}  // namespace

extern const TernaryKernels kTernaryKernels;  // the 2-bit kernels (ternary_neon.cpp)

void gemm_base3(const TernaryGemmArgs& a) {
  const Lookups lut;
  if (a.tokens >= kBase3TranscodeTokens) {
    return gemm_base3_transcoded(
        a, [&](const uint8_t* src, int64_t k_blocks, uint8_t* out) { transcode_group(src, k_blocks, out, lut); },
        kTernaryKernels.gemm);
  }
  for (int64_t n = a.row_begin; n < a.row_end; ++n) tile_tokens<kBase3TranscodeTokens - 1>(a, n, 0, a.tokens, lut);
}

}  // namespace bitnet::kernels::neon
