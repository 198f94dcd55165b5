// AVX-512 dense kernels: int8 x int8 with VNNI on tiles of 4 rows x T tokens; f16 x f32 with vcvtph2ps + FMA,
// 4 rows at a time so each activation load serves 4 rows.
// GCC 12 warns about its own _mm512_undefined_* inside the shuffle intrinsics (a false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/dense.h"
#include "kernels/x86_hsum.h"

namespace bitnet::kernels::avx512 {

namespace {

template <int R, int T>
void tile_i8(const DenseI8Args& a, int64_t n0, int64_t t0) {
  __m512i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_si512();
  // A 4-row tile starting on a row group reads one sequential run (see dense.h).
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = a.w + dense_i8_offset(n0 + r, 0, a.k_pad);
  for (int64_t k = 0; k < a.k_pad; k += 64) {
    __m512i w[R];
    for (int r = 0; r < R; ++r) w[r] = _mm512_loadu_si512(rows[r] + k / 64 * kDenseI8GroupStride);
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_loadu_si512(a.x + (t0 + t) * a.x_stride + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], w[r], xv);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r)
      a.y[(t0 + t) * a.y_stride + n0 + r] =
          static_cast<float>(hsum_epi32(acc[r][t]) - 128 * a.x_sum[t0 + t]) * a.scale[t0 + t] * a.row_scale[n0 + r];
}

template <int R>
void rows_i8(const DenseI8Args& a, int64_t n0) {
  int64_t t = 0;
  for (; t + 4 <= a.tokens; t += 4) tile_i8<R, 4>(a, n0, t);
  for (; t < a.tokens; ++t) tile_i8<R, 1>(a, n0, t);
}

void gemm_i8(const DenseI8Args& a) {
  int64_t n = a.row_begin;
  for (; n % 4 != 0 && n < a.row_end; ++n) rows_i8<1>(a, n);  // up to the first whole row group
  for (; n + 4 <= a.row_end; n += 4) rows_i8<4>(a, n);
  for (; n < a.row_end; ++n) rows_i8<1>(a, n);
}

template <int R>
void rows_f16(const DenseF16Args& a, int64_t n0) {
  // The f16 head is the model file's row-major embedding (4 short streams per tile, which the hardware
  // prefetcher picks up late): for one token, the next tile's rows are prefetched into L2 one tile ahead.
  const bool prefetch = a.tokens == 1 && n0 + 2 * R <= a.row_end;
  const uint16_t* next = a.w + (n0 + R) * a.k_stride;
  for (int64_t t = 0; t < a.tokens; ++t) {
    const float* x = a.x + t * a.x_stride;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= a.k; k += 16) {
      if (prefetch && k % 32 == 0)
        for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * a.k_stride + k), _MM_HINT_T1);
      const __m512 xv = _mm512_loadu_ps(x + k);
      for (int r = 0; r < R; ++r) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + (n0 + r) * a.k_stride + k));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), xv, acc[r]);
      }
    }
    if (k < a.k) {  // the tail, masked
      const __mmask16 m = static_cast<__mmask16>((1u << (a.k - k)) - 1);
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + k);
      for (int r = 0; r < R; ++r) {
        const __m256i h = _mm256_maskz_loadu_epi16(m, a.w + (n0 + r) * a.k_stride + k);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), xv, acc[r]);
      }
    }
    for (int r = 0; r < R; ++r) a.y[t * a.y_stride + n0 + r] = _mm512_reduce_add_ps(acc[r]);
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

}  // namespace bitnet::kernels::avx512
