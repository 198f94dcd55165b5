// AVX2 kernel of the base-3 layout (kernels/ternary_base3.h). AVX2 has no 128-entry byte lookup: each lookup is
// eight 16-entry `vpshufb` (one per value of the index's bits 4-6) merged by a tree of `vpblendvb` on those
// bits, about 18 operations where AVX-512 VBMI needs one. So this variant is bound by its decode, a few times
// the 2-bit kernel's work per weight (docs/kernels.md): the packing is for memory here, not speed.
// One to three tokens: tiles of 1 row x T tokens share the decode; `vpmaddubsw` sums (codes 0..2 x int8: at most
// 512) are added in 16 bits over one superblock (20 per lane, < 2^15) and widened once per superblock. Four tokens
// or more transcode each row group into the 2-bit layout once (gemm_base3_transcoded) for the 2-bit kernel.
#include <immintrin.h>

#include "kernels/ternary_base3.h"
#include "kernels/x86_hsum.h"

namespace bitnet::kernels::avx2 {

namespace {

// One 128-entry table as eight 16-byte slices, each in both 128-bit lanes.
struct Table {
  __m256i slice[8];
  explicit Table(const uint8_t* t) {
    for (int j = 0; j < 8; ++j)
      slice[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16 * j)));
  }
  // Entry (i & 127) of each byte of i.
  __m256i look(__m256i i) const {
    // vpblendvb selects by each byte's bit 7: shifted left by 3, 2 and 1, bits 4, 5 and 6 land there (a 16-bit
    // shift carries the low byte's top bits into the high byte's low bits, never into bit 7).
    const __m256i b4 = _mm256_slli_epi16(i, 3), b5 = _mm256_slli_epi16(i, 2), b6 = _mm256_slli_epi16(i, 1);
    // vpshufb reads bits 0-3 (and zeroes a lane whose bit 7 is set: masked off first).
    const __m256i lo = _mm256_and_si256(i, _mm256_set1_epi8(15));
    __m256i s[8];
    for (int j = 0; j < 8; ++j) s[j] = _mm256_shuffle_epi8(slice[j], lo);
    const __m256i s01 = _mm256_blendv_epi8(s[0], s[1], b4), s23 = _mm256_blendv_epi8(s[2], s[3], b4),
                  s45 = _mm256_blendv_epi8(s[4], s[5], b4), s67 = _mm256_blendv_epi8(s[6], s[7], b4);
    return _mm256_blendv_epi8(_mm256_blendv_epi8(s01, s23, b5), _mm256_blendv_epi8(s45, s67, b5), b6);
  }
};

struct Lookups {
  Table lo{kBase3.lo.data()}, hi{kBase3.hi.data()};
  // The five planes of 32 bytes, each shifted down to codes 0..2.
  void planes(__m256i v, __m256i p[kBase3Blocks]) const {
    const __m256i m3 = _mm256_set1_epi8(3), A = lo.look(v), B = hi.look(_mm256_srli_epi16(v, 1));
    p[0] = _mm256_and_si256(A, m3);
    p[1] = _mm256_and_si256(_mm256_srli_epi16(A, 2), m3);
    p[2] = _mm256_and_si256(B, m3);
    p[3] = _mm256_and_si256(_mm256_srli_epi16(B, 2), m3);
    p[4] = _mm256_and_si256(_mm256_srli_epi16(_mm256_add_epi8(A, B), 5), m3);
  }
};

template <int T>
void tile(const TernaryGemmArgs& a, int64_t n, int64_t t0, const Lookups& lut) {
  const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  __m256i acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
  const int8_t* x = a.x + t0 * a.x_stride;
  __m256i sum16[T];
  auto feed = [&](__m256i codes, int64_t k) {
    for (int t = 0; t < T; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + t * a.x_stride + k));
      sum16[t] = _mm256_add_epi16(sum16[t], _mm256_maddubs_epi16(codes, xv));
    }
  };
  auto widen = [&] {
    for (int t = 0; t < T; ++t) acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(sum16[t], ones));
  };
  const int64_t supers = base3_superblocks(a.k_blocks);
  const uint8_t* w = a.w + base3_super_offset(n, 0, a.k_blocks);
  for (int64_t sb = 0; sb < supers; ++sb) {
    for (int t = 0; t < T; ++t) sum16[t] = _mm256_setzero_si256();
    for (int64_t j = 0; j < kBase3SuperBytes; j += 32) {
      const uint8_t* at = w + sb * kBase3GroupSuperStride + j / 64 * kBase3PieceStride + j % 64;
      __m256i p[kBase3Blocks];
      lut.planes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)), p);
      for (int i = 0; i < kBase3Blocks; ++i) feed(p[i], sb * kBase3SuperWeights + j + i * kTernaryBlock);
    }
    widen();
  }
  for (int64_t tb = 0; tb < base3_tail_blocks(a.k_blocks); ++tb) {
    const uint8_t* blk = a.w + base3_tail_offset(n, tb, a.k_blocks);
    const int64_t k = supers * kBase3SuperWeights + tb * kTernaryBlock;
    for (int t = 0; t < T; ++t) sum16[t] = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * half));
      for (int f = 0; f < 4; ++f) feed(_mm256_and_si256(_mm256_srli_epi16(v, 2 * f), m3), k + 64 * f + 32 * half);
    }
    widen();
  }
  for (int t = 0; t < T; ++t)
    a.y[(t0 + t) * a.y_stride + n] = static_cast<float>(hsum_epi32(acc[t]) - a.x_sum[t0 + t]) * a.scale[t0 + t];
}

// The superblocks of the 4 rows of the group at `src` in the 2-bit layout (gemm_base3_transcoded), 32 bytes at
// a time.
void transcode_group(const uint8_t* src, int64_t k_blocks, uint8_t* out, const Lookups& lut) {
  const int64_t supers = base3_superblocks(k_blocks);
  for (int64_t sb = 0; sb < supers; ++sb) {
    for (int64_t r = 0; r < kTernaryRowGroup; ++r) {
      for (int half = 0; half < 2; ++half) {
        __m256i blk[kBase3Blocks];
        for (auto& b : blk) b = _mm256_setzero_si256();
        for (int q = 0; q < 4; ++q) {
          __m256i p[kBase3Blocks];
          lut.planes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                         src + base3_super_offset(r, sb, k_blocks) + q * kBase3PieceStride + 32 * half)),
                     p);
          for (int i = 0; i < kBase3Blocks; ++i) blk[i] = _mm256_or_si256(blk[i], _mm256_slli_epi16(p[i], 2 * q));
        }
        for (int i = 0; i < kBase3Blocks; ++i)
          _mm256_storeu_si256(
              reinterpret_cast<__m256i*>(out + ternary_block_offset(r, kBase3Blocks * sb + i, k_blocks) + 32 * half),
              blk[i]);
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

extern const TernaryKernels kTernaryKernels;  // the 2-bit kernels (ternary_avx2.cpp)

void gemm_base3(const TernaryGemmArgs& a) {
  const Lookups lut;
  if (a.tokens >= kBase3TranscodeTokens) {
    return gemm_base3_transcoded(
        a, [&](const uint8_t* src, int64_t k_blocks, uint8_t* out) { transcode_group(src, k_blocks, out, lut); },
        kTernaryKernels.gemm);
  }
  for (int64_t n = a.row_begin; n < a.row_end; ++n) tile_tokens<kBase3TranscodeTokens - 1>(a, n, 0, a.tokens, lut);
}

}  // namespace bitnet::kernels::avx2
