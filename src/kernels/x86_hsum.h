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

#if defined(__AVX512F__)
// Swapping halves, then quarters, then pairs.
static inline int32_t hsum_epi32(__m512i v) {
  v = _mm512_add_epi32(v, _mm512_shuffle_i64x2(v, v, 0x4e));
  v = _mm512_add_epi32(v, _mm512_shuffle_i64x2(v, v, 0xb1));
  v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC));
  v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_CDAB));
  return _mm_cvtsi128_si32(_mm512_castsi512_si128(v));
}
#endif

}  // namespace bitnet::kernels
