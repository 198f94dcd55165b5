// AVX2 dense kernels. int8: `vpmaddubsw` would saturate on 255 x 127 pairs, so both sides are sign-extended
// to 16 bits and multiplied with `vpmaddwd` (exact). int4: nibbles (<= 15) x s8 fit `vpmaddubsw` without
// saturation; one row and token at a time, a group of 32 per 256-bit product. f16: F16C conversion + FMA, 4
// rows at a time.
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

// sum over one group of 32 of (u - 8) x, in 8 int32 lanes: u . x - 8 * sum(x).
inline __m256i group_dot_i4(__m256i u, __m256i x) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i ux = _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), ones);
  const __m256i x8 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), x), ones);
  return _mm256_sub_epi32(ux, x8);
}

void gemm_i4(const DenseI4Args& a) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  for (int64_t n = a.row_begin; n < a.row_end; ++n) {
    const uint8_t* w = a.w + dense_i4_offset(n, 0, a.k_pad);
    const uint16_t* sc = a.scales + dense_i4_scale_index(n, 0, a.k_pad);
    constexpr int64_t kScaleStride = kDenseI8RowGroup * kDenseI4SuperBlock / kDenseI4Group;
    for (int64_t t = 0; t < a.tokens; ++t) {
      const int8_t* x = a.x + t * a.x_stride;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t b = 0; b < a.k_pad / kDenseI4SuperBlock; ++b) {
        const uint8_t* p = w + b * kDenseI4GroupStride;
        const __m256i first = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        const __m256i second = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
        // Weights 0-31, 32-63, 64-95, 96-127 of the super-block: the groups 0..3.
        const __m256i u[4] = {_mm256_and_si256(first, nibble), _mm256_and_si256(second, nibble),
                              _mm256_and_si256(_mm256_srli_epi16(first, 4), nibble),
                              _mm256_and_si256(_mm256_srli_epi16(second, 4), nibble)};
        alignas(16) float s[4];
        _mm_store_ps(s, _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + b * kScaleStride))));
        for (int g = 0; g < 4; ++g) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + b * kDenseI4SuperBlock + 32 * g));
          acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(group_dot_i4(u[g], xv)), _mm256_set1_ps(s[g]), acc);
        }
      }
      a.y[t * a.y_stride + n] = hsum_ps(acc) * a.dequant[t];
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
const DenseKernels kDenseKernels = {gemm_i8, gemm_f16, gemm_i4};

}  // namespace bitnet::kernels::avx2
