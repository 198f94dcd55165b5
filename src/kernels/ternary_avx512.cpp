// AVX-512 VNNI ternary kernel. One tile is R rows x T tokens of int32 accumulators held in zmm registers for
// the whole K loop: each 64-byte weight block is unpacked (shift + and) once and feeds T `vpdpbusd`, each
// activation load feeds R of them. Batches and prefill use 4 x 4 tiles (measured 15% faster than 4 x 6, which
// holds 30 of the 32 zmm registers live). Decode (T = 1) streams 4 rows at a time with the fields masked in
// place (gemv_masked).
// GCC 12 warns about its own _mm512_undefined_* inside the shuffle intrinsics (a false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/ternary.h"
#include "kernels/ternary_base3.h"
#include "kernels/x86_hsum.h"
#include "kernels/x86_prefetch.h"
#include "kernels/x86_vnni.h"

namespace bitnet::kernels::avx512 {

static_assert(kTernaryGroupStride == kPrefetchBlockBytes);

namespace {

template <int R, int T>
void tile(const TernaryGemmArgs& a, int64_t n0, int64_t t0) {
  const __m512i mask = _mm512_set1_epi8(3);
  // With several tokens, the first token tile of a row group prefetches the group kPrefetchGroupsAhead on.
  const bool prefetch = R == kTernaryRowGroup && t0 == 0 && a.tokens > 1;
  const uint8_t* group = a.w + ternary_block_offset(n0, 0, a.k_blocks);
  const int64_t ahead = kPrefetchGroupsAhead * a.k_blocks * kTernaryGroupStride;
  __m512i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_si512();
  const uint8_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = a.w + ternary_block_offset(n0 + r, 0, a.k_blocks);
  const int8_t* x = a.x + t0 * a.x_stride;
  for (int64_t b = 0; b < a.k_blocks; ++b) {
    if (prefetch) prefetch_group_block(group, ahead + b * kTernaryGroupStride);
    for (int s = 0; s < 4; ++s) {
      // The packed block is loaded again for each shift (an L1 hit folded into the shift): measured 10% faster
      // than loading it once into 4 registers, even with the 4 x 4 tile's free registers.
      __m512i codes[R];
      for (int r = 0; r < R; ++r)
        codes[r] = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(w[r] + b * kTernaryGroupStride), 2 * s), mask);
      for (int t = 0; t < T; ++t) {
        const __m512i xv = _mm512_loadu_si512(x + t * a.x_stride + b * kTernaryBlock + 64 * s);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], codes[r], xv);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    float* y = a.y + (t0 + t) * a.y_stride + n0;
    const int32_t offset = a.x_sum[t0 + t];
    const float scale = a.scale[t0 + t];
    if constexpr (R == 4) {
      const __m128i dots =
          _mm_sub_epi32(hsum4_epi32(acc[0][t], acc[1][t], acc[2][t], acc[3][t]), _mm_set1_epi32(offset));
      _mm_storeu_ps(y, _mm_mul_ps(_mm_cvtepi32_ps(dots), _mm_set1_ps(scale)));
    } else {
      for (int r = 0; r < R; ++r) y[r] = static_cast<float>(hsum_epi32(acc[r][t]) - offset) * scale;
    }
  }
}

// One token (decode's GEMV), 4 rows: each 2-bit field is masked in place (0x03, 0x0c, 0x30, 0xc0) instead of
// shifted down and masked, so field s holds code x 4^s and feeds its own accumulator; the four are brought back to
// one by exact arithmetic shifts (every lane of accumulator s is a multiple of 4^s; at most 2^30 at kMaxTernaryK)
// before the row sums. Per block and row: one load, 4 and, 4 vpdpbusd, against 4 loads, 3 shifts, 4 and and 4
// vpdpbusd for the shift + mask tile. In cache 25-43% faster on the 2B4T shapes, and from DRAM as fast or faster
// (docs/kernels.md).
void gemv_masked(const TernaryGemmArgs& a, int64_t n0) {
  const __m512i m0 = _mm512_set1_epi8(0x03), m1 = _mm512_set1_epi8(0x0c), m2 = _mm512_set1_epi8(0x30),
                m3 = _mm512_set1_epi8(static_cast<char>(0xc0));
  __m512i r0a = _mm512_setzero_si512(), r0b = r0a, r0c = r0a, r0d = r0a, r1a = r0a, r1b = r0a, r1c = r0a, r1d = r0a,
          r2a = r0a, r2b = r0a, r2c = r0a, r2d = r0a, r3a = r0a, r3b = r0a, r3c = r0a, r3d = r0a;
  // Rows n0..n0+3 need not share a row group (a thread's range may start anywhere).
  const uint8_t* w[4];
  for (int r = 0; r < 4; ++r) w[r] = a.w + ternary_block_offset(n0 + r, 0, a.k_blocks);
  const int8_t* xp = a.x;
  for (int64_t b = 0; b < a.k_blocks; ++b, xp += kTernaryBlock) {
    const int64_t at = b * kTernaryGroupStride;
    const __m512i x0 = _mm512_loadu_si512(xp), x1 = _mm512_loadu_si512(xp + 64), x2 = _mm512_loadu_si512(xp + 128),
                  x3 = _mm512_loadu_si512(xp + 192);
#define BITNET_ROW(r, A, B, C, D)                                                      \
  {                                                                                    \
    const __m512i v = _mm512_loadu_si512(w[r] + at);                                   \
    BITNET_DPBUSD(A, _mm512_and_si512(v, m0), x0);                                     \
    BITNET_DPBUSD(B, _mm512_and_si512(v, m1), x1);                                     \
    BITNET_DPBUSD(C, _mm512_and_si512(v, m2), x2);                                     \
    BITNET_DPBUSD(D, _mm512_and_si512(v, m3), x3);                                     \
  }
    BITNET_ROW(0, r0a, r0b, r0c, r0d)
    BITNET_ROW(1, r1a, r1b, r1c, r1d)
    BITNET_ROW(2, r2a, r2b, r2c, r2d)
    BITNET_ROW(3, r3a, r3b, r3c, r3d)
#undef BITNET_ROW
  }
  auto fold = [](__m512i p, __m512i q, __m512i r, __m512i s) {
    return _mm512_add_epi32(_mm512_add_epi32(p, _mm512_srai_epi32(q, 2)),
                            _mm512_add_epi32(_mm512_srai_epi32(r, 4), _mm512_srai_epi32(s, 6)));
  };
  const __m128i dots = _mm_sub_epi32(hsum4_epi32(fold(r0a, r0b, r0c, r0d), fold(r1a, r1b, r1c, r1d),
                                           fold(r2a, r2b, r2c, r2d), fold(r3a, r3b, r3c, r3d)),
                                     _mm_set1_epi32(a.x_sum[0]));
  _mm_storeu_ps(a.y + n0, _mm_mul_ps(_mm_cvtepi32_ps(dots), _mm_set1_ps(a.scale[0])));
}

// Token remainders 1..T-1 of a tile of R rows.
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
  if (a.tokens == 1)
    for (; n + 4 <= a.row_end; n += 4) gemv_masked(a, n);  // then the last 1-3 rows by the tiles
  for (; n + 4 <= a.row_end; n += 4) rows<4>(a, n);
  switch (a.row_end - n) {
    case 3: rows<3>(a, n); break;
    case 2: rows<2>(a, n); break;
    case 1: rows<1>(a, n); break;
    default: break;
  }
}

}  // namespace

extern const TernaryKernels kTernaryKernels;
const TernaryKernels kTernaryKernels = {gemm, gemm_base3, encode_base3, true};

}  // namespace bitnet::kernels::avx512
