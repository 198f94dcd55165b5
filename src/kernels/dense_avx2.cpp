// AVX2 dense kernels. int8: `vpmaddubsw` would saturate on 255 x 127 pairs, so both sides are sign-extended
// to 16 bits and multiplied with `vpmaddwd` (exact). f16: F16C conversion + FMA, 4 rows at a time.
#include <immintrin.h>

#include "kernels/dense.h"
#include "kernels/x86_hsum.h"

namespace bitnet::kernels::avx2 {

namespace {

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void gemm_i8(const DenseI8Args& a) {
  const __m256i offset = _mm256_set1_epi16(128);
  for (int64_t n = a.row_begin; n < a.row_end; ++n) {
    for (int64_t t = 0; t < a.tokens; ++t) {
      __m256i acc = _mm256_setzero_si256();
      for (int64_t k = 0; k < a.k_pad; k += 16) {
        const __m256i w = _mm256_sub_epi16(
            _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.w + dense_i8_offset(n, k, a.k_pad)))), offset);
        const __m256i x =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.x + t * a.x_stride + k)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w, x));
      }
      a.y[t * a.y_stride + n] = static_cast<float>(hsum_epi32(acc)) * a.scale[t] * a.row_scale[n];
    }
  }
}

template <int R>
void rows_f16(const DenseF16Args& a, int64_t n0) {
  for (int64_t t = 0; t < a.tokens; ++t) {
    const float* x = a.x + t * a.x_stride;
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= a.k; k += 8) {
      const __m256 xv = _mm256_loadu_ps(x + k);
      for (int r = 0; r < R; ++r) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.w + (n0 + r) * a.k_stride + k));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtph_ps(h), xv, acc[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      float s = hsum_ps(acc[r]);
      for (int64_t j = k; j < a.k; ++j) s += _cvtsh_ss(a.w[(n0 + r) * a.k_stride + j]) * x[j];
      a.y[t * a.y_stride + n0 + r] = s;
    }
  }
}

void gemm_f16(const DenseF16Args& a) {
  int64_t n = a.row_begin;
  for (; n + 4 <= a.row_end; n += 4) rows_f16<4>(a, n);
  for (; n < a.row_end; ++n) rows_f16<1>(a, n);
}

}  // namespace

extern const DenseKernels kDenseKernels;
const DenseKernels kDenseKernels = {gemm_i8, gemm_f16};

}  // namespace bitnet::kernels::avx2
