// AVX-VNNI dense kernels (int8 and int4 heads): the AVX2 variant's shapes with `vpdpbusd` in its VEX form
// (ternary_avxvnni.cpp says which CPUs). int8: the stored value + 128 (u8) x s8 activations straight into int32,
// the 128 x sum(x) taken off after, as the AVX-512 variant does, instead of widening both sides to 16 bits. int4:
// a row group and a token at a time as AVX2, each (row, group) pair's dot in its own lane (dense.h), summed in
// int32 by `vpdpbusd` instead of `vpmaddubsw` + 16-bit adds + `vpmaddwd`. The f16 kernel is AVX2's
// (ternary_dispatch.cpp).
#include <immintrin.h>

#include "kernels/dense.h"
#include "kernels/x86_hsum.h"
#include "kernels/x86_prefetch.h"

namespace bitnet::kernels::avxvnni {

static_assert(kDenseI8GroupStride == kPrefetchBlockBytes);

namespace {

template <int R, int T>
void tile_i8(const DenseI8Args& a, int64_t n0, int64_t t0) {
  __m256i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
  // A 4-row tile starting on a row group reads one sequential run (see dense.h).
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = a.w + dense_i8_offset(n0 + r, 0, a.k_pad);
  // With several tokens, the first token tile of a row group prefetches the group kPrefetchGroupsAhead on
  // (x86_prefetch.h).
  const bool prefetch = R == kDenseI8RowGroup && t0 == 0 && a.tokens > 1;
  const int64_t ahead = kPrefetchGroupsAhead * a.k_pad * kDenseI8RowGroup;
  for (int64_t k = 0; k < a.k_pad; k += 64) {
    if (prefetch) prefetch_group_block(rows[0], ahead + k / 64 * kDenseI8GroupStride);
    for (int half = 0; half < 2; ++half) {
      __m256i w[R];
      for (int r = 0; r < R; ++r)
        w[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r] + k / 64 * kDenseI8GroupStride + 32 * half));
      for (int t = 0; t < T; ++t) {
        const __m256i xv =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.x + (t0 + t) * a.x_stride + k + 32 * half));
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_dpbusd_avx_epi32(acc[r][t], w[r], xv);
      }
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
  for (; t + 2 <= a.tokens; t += 2) tile_i8<R, 2>(a, n0, t);
  for (; t < a.tokens; ++t) tile_i8<R, 1>(a, n0, t);
}

}  // namespace

// The int8 and int4 kernels; ternary_dispatch.cpp pairs them with AVX2's f16 kernel.
void gemm_i8(const DenseI8Args& a) {
  // Single rows up to the first whole row group and after the last one, groups of 4 in between.
  int64_t n = a.row_begin;
  for (; n % kDenseI8RowGroup != 0 && n < a.row_end; ++n) rows_i8<1>(a, n);
  for (; n + kDenseI8RowGroup <= a.row_end; n += kDenseI8RowGroup) rows_i8<4>(a, n);
  for (; n < a.row_end; ++n) rows_i8<1>(a, n);
}

// One row group (4 rows; past the matrix's last row, its zero padding) and one token. A 256-bit half h of each of
// a super-block's 4 vectors holds rows 2h and 2h + 1, lane 4r' + g (dense.h). Per half, two `vpdpbusd` chains over
// the 4 vectors: the low nibbles (mask 0x0f: u) from the groups' -8 sum(x), the high ones in place (mask 0xf0:
// 16 u) from 0, so one arithmetic shift per half replaces a shift per vector; their sum is each group's exact dot,
// and one conversion and one FMA by the 8 scales add it to the half's float sums.
void gemm_i4(const DenseI4Args& a) {
  const __m256i low = _mm256_set1_epi8(0x0f), high = _mm256_set1_epi8(static_cast<char>(0xf0));
  constexpr int64_t kScaleStride = kDenseI8RowGroup * kDenseI4SuperBlock / kDenseI4Group;
  const int64_t blocks = a.k_pad / kDenseI4SuperBlock, groups = a.k_pad / kDenseI4Group;
  for (int64_t n0 = a.row_begin / kDenseI8RowGroup * kDenseI8RowGroup; n0 < a.row_end; n0 += kDenseI8RowGroup) {
    const uint8_t* w = a.w + dense_i4_offset(n0, 0, a.k_pad);
    const uint16_t* sc = a.scales + dense_i4_scale_index(n0, 0, a.k_pad);
    for (int64_t t = 0; t < a.tokens; ++t) {
      __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t b = 0; b < blocks; ++b) {
        const int8_t* x = a.x_steps + t * a.k_pad + b * kDenseI4SuperBlock;
        const __m256i offsets = _mm256_broadcastsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.x_offsets + t * groups + 4 * b)));
        for (int h = 0; h < 2; ++h) {
          __m256i d_lo = offsets, d_hi = _mm256_setzero_si256();
          for (int v = 0; v < 4; ++v) {
            const __m256i packed =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * kDenseI4GroupStride + 64 * v + 32 * h));
            const __m256i x_lo =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16 * v)));
            const __m256i x_hi =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16 * v + 64)));
            d_lo = _mm256_dpbusd_avx_epi32(d_lo, _mm256_and_si256(packed, low), x_lo);
            d_hi = _mm256_dpbusd_avx_epi32(d_hi, _mm256_and_si256(packed, high), x_hi);
          }
          const __m256i dots = _mm256_add_epi32(d_lo, _mm256_srai_epi32(d_hi, 4));
          const __m256 s =
              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + b * kScaleStride + 8 * h)));
          acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), s, acc[h]);
        }
      }
      // Lanes 4r' + g of half h: rows 2h + r'. Pairs, then pairs of pairs: the row sums in lanes 0 and 4.
      for (int h = 0; h < 2; ++h) {
        __m256 r = _mm256_add_ps(acc[h], _mm256_permute_ps(acc[h], 0xb1));
        r = _mm256_add_ps(r, _mm256_permute_ps(r, 0x4e));
        alignas(32) float sums[8];
        _mm256_store_ps(sums, r);
        for (int i = 0; i < 2; ++i) {
          const int64_t n = n0 + 2 * h + i;
          if (n >= a.row_begin && n < a.row_end) a.y[t * a.y_stride + n] = sums[4 * i] * a.dequant[t];
        }
      }
    }
  }
}

}  // namespace bitnet::kernels::avxvnni
