// AVX-VNNI ternary kernel: the AVX2 variant's shapes with `vpdpbusd` in its VEX form (AVX-VNNI: Intel client
// cores from Alder Lake on, which have no AVX-512, and AMD Zen 5). Each u8 code x s8 activation product goes
// straight into int32 lanes, where AVX2 needs `vpmaddubsw`, a 16-bit add and, once per block, `vpmaddwd`.
// Only 16 ymm registers: the multi-token tiles are 4 rows x 2 tokens of shift + mask, and the one-token GEMV
// (decode) takes 4 rows with two accumulators each (below).
#include <immintrin.h>

#include "kernels/ternary.h"
#include "kernels/x86_hsum.h"
#include "kernels/x86_prefetch.h"
#include "kernels/x86_vnni_vex.h"

namespace bitnet::kernels::avxvnni {

static_assert(kTernaryGroupStride == kPrefetchBlockBytes);

namespace {

template <int R, int T>
void tile(const TernaryGemmArgs& a, int64_t n0, int64_t t0) {
  const __m256i mask = _mm256_set1_epi8(3);
  // With several tokens, the first token tile of a row group prefetches the group kPrefetchGroupsAhead on
  // (x86_prefetch.h).
  const bool prefetch = n0 % kTernaryRowGroup == 0 && t0 == 0 && a.tokens > 1;
  const uint8_t* group = a.w + ternary_block_offset(n0, 0, a.k_blocks);
  const int64_t ahead = kPrefetchGroupsAhead * a.k_blocks * kTernaryGroupStride;
  __m256i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
  const uint8_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = a.w + ternary_block_offset(n0 + r, 0, a.k_blocks);
  const int8_t* x = a.x + t0 * a.x_stride;
  for (int64_t b = 0; b < a.k_blocks; ++b) {
    if (prefetch) prefetch_group_block(group, ahead + b * kTernaryGroupStride);
    for (int half = 0; half < 2; ++half) {  // bytes 0..31 then 32..63 of the block
      __m256i packed[R];
      for (int r = 0; r < R; ++r)
        packed[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r] + b * kTernaryGroupStride + 32 * half));
      for (int s = 0; s < 4; ++s) {
        __m256i codes[R];
        for (int r = 0; r < R; ++r) codes[r] = _mm256_and_si256(_mm256_srli_epi16(packed[r], 2 * s), mask);
        for (int t = 0; t < T; ++t) {
          const __m256i xv = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(x + t * a.x_stride + b * kTernaryBlock + 64 * s + 32 * half));
          for (int r = 0; r < R; ++r) acc[r][t] = _mm256_dpbusd_avx_epi32(acc[r][t], codes[r], xv);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    float* y = a.y + (t0 + t) * a.y_stride + n0;
    const int32_t offset = a.x_sum[t0 + t];
    const float scale = a.scale[t0 + t];
    for (int r = 0; r < R; ++r) y[r] = static_cast<float>(hsum_epi32(acc[r][t]) - offset) * scale;
  }
}

// One token (decode's GEMV), 4 rows. Each 32 bytes of a row hold fields 0-3 of 32 weights; one shift by 4 brings
// fields 2 and 3 down, and two masks (0x03, 0x0c) then give fields 0 and 2 as codes (into accumulator A) and
// fields 1 and 3 as 4 x codes (into B). So per 32 bytes and row: one load, one shift, 4 and, 4 `vpdpbusd` (the
// activations read from memory: 4 ymm of them would not fit beside the 8 accumulators), against 3 shifts for
// shift + mask; and the row's sum is A + B / 4 (exact: every lane of B is a multiple of 4).
void gemv_4rows(const TernaryGemmArgs& a, int64_t n0) {
  const __m256i m0 = _mm256_set1_epi8(0x03), m1 = _mm256_set1_epi8(0x0c);
  __m256i r0a = _mm256_setzero_si256(), r0b = r0a, r1a = r0a, r1b = r0a, r2a = r0a, r2b = r0a, r3a = r0a, r3b = r0a;
  // Rows n0..n0+3 need not share a row group (a thread's range may start anywhere); block b of each row is
  // kTernaryGroupStride after block b - 1 either way.
  const uint8_t* w[4];
  for (int r = 0; r < 4; ++r) w[r] = a.w + ternary_block_offset(n0 + r, 0, a.k_blocks);
  const int8_t* xp = a.x;
  for (int64_t b = 0; b < a.k_blocks; ++b) {
    for (int half = 0; half < 2; ++half, xp += 32) {
      const int64_t at = b * kTernaryGroupStride + 32 * half;
      const auto* x0 = reinterpret_cast<const __m256i_u*>(xp);
      const auto* x1 = reinterpret_cast<const __m256i_u*>(xp + 64);
      const auto* x2 = reinterpret_cast<const __m256i_u*>(xp + 128);
      const auto* x3 = reinterpret_cast<const __m256i_u*>(xp + 192);
#define BITNET_ROW(r, A, B)                                                                   \
  {                                                                                           \
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r] + at));        \
    const __m256i v4 = _mm256_srli_epi16(v, 4);                                               \
    BITNET_DPBUSD_VEX(A, _mm256_and_si256(v, m0), *x0);                                       \
    BITNET_DPBUSD_VEX(B, _mm256_and_si256(v, m1), *x1);                                       \
    BITNET_DPBUSD_VEX(A, _mm256_and_si256(v4, m0), *x2);                                      \
    BITNET_DPBUSD_VEX(B, _mm256_and_si256(v4, m1), *x3);                                      \
  }
      BITNET_ROW(0, r0a, r0b)
      BITNET_ROW(1, r1a, r1b)
      BITNET_ROW(2, r2a, r2b)
      BITNET_ROW(3, r3a, r3b)
#undef BITNET_ROW
    }
    xp += kTernaryBlock - 64;  // the two halves stepped 64 of the block's 256 activations
  }
  auto fold = [](__m256i p, __m256i q) { return _mm256_add_epi32(p, _mm256_srai_epi32(q, 2)); };
  const __m128i dots =
      _mm_sub_epi32(hsum4_epi32(fold(r0a, r0b), fold(r1a, r1b), fold(r2a, r2b), fold(r3a, r3b)),
                    _mm_set1_epi32(a.x_sum[0]));
  _mm_storeu_ps(a.y + n0, _mm_mul_ps(_mm_cvtepi32_ps(dots), _mm_set1_ps(a.scale[0])));
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
  constexpr int kT = 2;
  int64_t t = 0;
  for (; t + kT <= a.tokens; t += kT) tile<R, kT>(a, n0, t);
  if (t < a.tokens) tile_tokens<R, kT - 1>(a, n0, t, a.tokens - t);
}

}  // namespace

// The 2-bit layout; the table in ternary_dispatch.cpp takes the base-3 kernels from the AVX2 variant.
void gemm(const TernaryGemmArgs& a) {
  int64_t n = a.row_begin;
  if (a.tokens == 1)
    for (; n + 4 <= a.row_end; n += 4) gemv_4rows(a, n);  // then the last 1-3 rows by the tiles
  for (; n + 4 <= a.row_end; n += 4) rows<4>(a, n);
  switch (a.row_end - n) {
    case 3: rows<3>(a, n); break;
    case 2: rows<2>(a, n); break;
    case 1: rows<1>(a, n); break;
    default: break;
  }
}

}  // namespace bitnet::kernels::avxvnni
