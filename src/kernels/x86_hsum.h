#pragma once
// Internal: horizontal sums of int32 lanes for the x86 kernel files. `static` on purpose: each ISA file is
// compiled with its own target flags, so each must get its own copy (an inline function shared between
// files built for AVX2 and AVX-512 could be merged into the AVX-512 build and run on an AVX2-only CPU).
#include <immintrin.h>

#include <cstdint>

namespace bitnet::kernels {

static inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// The four row sums of 4 accumulators in lanes 0..3 (as hsum4_epi32, on 8 lanes).
static inline __m128i hsum4_epi32(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
  const __m256i s01 = _mm256_add_epi32(_mm256_unpacklo_epi32(a0, a1), _mm256_unpackhi_epi32(a0, a1));
  const __m256i s23 = _mm256_add_epi32(_mm256_unpacklo_epi32(a2, a3), _mm256_unpackhi_epi32(a2, a3));
  const __m256i s = _mm256_add_epi32(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23));
  return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

#if defined(__AVX512F__)
// Swapping halves, then quarters, then pairs.
static inline int32_t hsum_epi32(__m512i v) {
  v = _mm512_add_epi32(v, _mm512_shuffle_i64x2(v, v, 0x4e));
  v = _mm512_add_epi32(v, _mm512_shuffle_i64x2(v, v, 0xb1));
  v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC));
  v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_CDAB));
  return _mm_cvtsi128_si32(_mm512_castsi512_si128(v));
}
// The four row sums of acc[0..3] in lanes 0..3: interleave pairs, add, interleave again, add, then fold the
// four 128-bit quarters. 13 operations for 4 sums instead of 4 full reductions (about 32).
static inline __m128i hsum4_epi32(__m512i a0, __m512i a1, __m512i a2, __m512i a3) {
  const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
  const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
  __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
  s = _mm512_add_epi32(s, _mm512_shuffle_i64x2(s, s, 0x4e));
  s = _mm512_add_epi32(s, _mm512_shuffle_i64x2(s, s, 0xb1));
  return _mm512_castsi512_si128(s);  // lanes: row 0, row 1, row 2, row 3
}
#endif

}  // namespace bitnet::kernels
