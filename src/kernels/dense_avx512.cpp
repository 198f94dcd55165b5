// AVX-512 dense kernels: int8 x int8 with VNNI on tiles of 4 rows x T tokens; int4 x int8 the same way, with
// each group's int32 dot scaled in float; f16 x f32 with vcvtph2ps + FMA, 4 rows at a time so each activation
// load serves 4 rows.
// GCC 12 warns about its own _mm512_undefined_* inside the shuffle intrinsics (a false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "kernels/dense.h"
#include "kernels/x86_hsum.h"
#include "kernels/x86_prefetch.h"

namespace bitnet::kernels::avx512 {

static_assert(kDenseI8GroupStride == kPrefetchBlockBytes && kDenseI4GroupStride == kPrefetchBlockBytes);

namespace {

template <int R, int T>
void tile_i8(const DenseI8Args& a, int64_t n0, int64_t t0) {
  __m512i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_si512();
  // A 4-row tile starting on a row group reads one sequential run (see dense.h).
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = a.w + dense_i8_offset(n0 + r, 0, a.k_pad);
  // With several tokens, the first token tile of a row group prefetches the group kPrefetchGroupsAhead on
  // (x86_prefetch.h).
  const bool prefetch = R == kDenseI8RowGroup && t0 == 0 && a.tokens > 1;
  const int64_t ahead = kPrefetchGroupsAhead * a.k_pad * kDenseI8RowGroup;
  for (int64_t k = 0; k < a.k_pad; k += 64) {
    if (prefetch) prefetch_group_block(rows[0], ahead + k / 64 * kDenseI8GroupStride);
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
  over_row_groups(a.row_begin, a.row_end, [&](int64_t n) { rows_i8<1>(a, n); }, [&](int64_t n) { rows_i8<4>(a, n); });
}

// int4 tile: one row group (4 rows; past the matrix's last row, its zero padding) x T tokens. Per super-block
// the 4 vectors are unpacked once for the T tokens: two masks give steps v (0x0f: u) and v + 4 (0xf0: 16 u) of
// every (row, group) lane (dense.h). Per token, two `vpdpbusd` chains take the steps' activations as 16-byte
// broadcasts: the low one starts from the groups' -8 sum(x), the high one sums 16 u x, exact in int32, so one
// arithmetic shift per super-block replaces a shift per vector. Their sum, one group's exact dot per lane, is
// converted and multiplied by the 16 scales into the row group's 16 float sums. Rows outside [row_begin,
// row_end) are not stored.
template <int T>
void tile_i4(const DenseI4Args& a, int64_t n0, int64_t t0) {
  const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(static_cast<char>(0xf0));
  const uint8_t* w = a.w + dense_i4_offset(n0, 0, a.k_pad);
  const uint16_t* sc = a.scales + dense_i4_scale_index(n0, 0, a.k_pad);
  constexpr int64_t kScaleStride = kDenseI8RowGroup * kDenseI4SuperBlock / kDenseI4Group;
  const int64_t blocks = a.k_pad / kDenseI4SuperBlock, groups = a.k_pad / kDenseI4Group;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  // As in tile_i8: with several tokens, the first token tile prefetches the group kPrefetchGroupsAhead on.
  const bool prefetch = t0 == 0 && a.tokens > 1;
  const int64_t ahead = kPrefetchGroupsAhead * blocks * kDenseI4GroupStride;
  for (int64_t b = 0; b < blocks; ++b) {
    if (prefetch) prefetch_group_block(w, ahead + b * kDenseI4GroupStride);
    __m512i lo[4], hi[4];
    for (int v = 0; v < 4; ++v) {
      const __m512i packed = _mm512_loadu_si512(w + b * kDenseI4GroupStride + 64 * v);
      lo[v] = _mm512_and_si512(packed, low);
      hi[v] = _mm512_and_si512(packed, high);
    }
    const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + b * kScaleStride)));
    for (int t = 0; t < T; ++t) {
      const int8_t* x = a.x_steps + (t0 + t) * a.k_pad + b * kDenseI4SuperBlock;
      __m512i d_lo = _mm512_broadcast_i32x4(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.x_offsets + (t0 + t) * groups + 4 * b)));
      __m512i d_hi = _mm512_setzero_si512();
      for (int v = 0; v < 4; ++v) {
        const __m512i x_lo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16 * v)));
        const __m512i x_hi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16 * v + 64)));
        d_lo = _mm512_dpbusd_epi32(d_lo, lo[v], x_lo);
        d_hi = _mm512_dpbusd_epi32(d_hi, hi[v], x_hi);
      }
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(d_lo, _mm512_srai_epi32(d_hi, 4))), s, acc[t]);
    }
  }
  // Lane 4r + g holds row r's group-g sum: add pairs, then pairs of pairs, and gather lanes 0, 4, 8, 12.
  const __m512i firsts = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
  const int64_t first = std::max<int64_t>(a.row_begin - n0, 0), last = std::min<int64_t>(a.row_end - n0, 4);
  const auto rows = static_cast<__mmask8>(((1u << last) - 1) & ~((1u << first) - 1));
  for (int t = 0; t < T; ++t) {
    __m512 r = _mm512_add_ps(acc[t], _mm512_permute_ps(acc[t], 0xb1));
    r = _mm512_add_ps(r, _mm512_permute_ps(r, 0x4e));
    const __m128 sums = _mm512_castps512_ps128(_mm512_permutexvar_ps(firsts, r));
    _mm_mask_storeu_ps(a.y + (t0 + t) * a.y_stride + n0, rows, _mm_mul_ps(sums, _mm_set1_ps(a.dequant[t0 + t])));
  }
}

void gemm_i4(const DenseI4Args& a) {
  for (int64_t n0 = a.row_begin / kDenseI8RowGroup * kDenseI8RowGroup; n0 < a.row_end; n0 += kDenseI8RowGroup) {
    int64_t t = 0;
    for (; t + 4 <= a.tokens; t += 4) tile_i4<4>(a, n0, t);
    for (; t < a.tokens; ++t) tile_i4<1>(a, n0, t);
  }
}

inline constexpr int kF16MaxSums = 24;  // accumulators of a multi-token tile (of 32 zmm registers)

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

// Several tokens (sequences decoding together, the head of a batched step): each 16-weight chunk of a row is
// converted from f16 once and used by TT tokens, instead of once per token. Every (row, token) sum still adds the
// same products in the same order as rows_f16, so a token's logits are bit-identical to computing it alone.
template <int R, int TT>
void rows_f16_tokens(const DenseF16Args& a, int64_t n0, int64_t t0) {
  // The first token group of a row tile prefetches the next tile's rows into L2, as rows_f16 does.
  const bool prefetch = t0 == 0 && n0 + 2 * R <= a.row_end;
  const uint16_t* next = a.w + (n0 + R) * a.k_stride;
  __m512 acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= a.k; k += 16) {
    if (prefetch && k % 32 == 0)
      for (int r = 0; r < R; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(next + r * a.k_stride + k), _MM_HINT_T1);
    // The R rows' weights in registers, then one token's activations at a time: R + 1 registers beside the
    // R x TT sums (an array of TT activations as well would spill a sum at 3 x 8).
    __m512 wv[R];
    for (int r = 0; r < R; ++r)
      wv[r] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + (n0 + r) * a.k_stride + k)));
    for (int t = 0; t < TT; ++t) {
      const __m512 xv = _mm512_loadu_ps(a.x + (t0 + t) * a.x_stride + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  if (k < a.k) {  // the tail, masked
    const __mmask16 m = static_cast<__mmask16>((1u << (a.k - k)) - 1);
    __m512 xv[TT];
    for (int t = 0; t < TT; ++t) xv[t] = _mm512_maskz_loadu_ps(m, a.x + (t0 + t) * a.x_stride + k);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a.w + (n0 + r) * a.k_stride + k));
      for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) a.y[(t0 + t) * a.y_stride + n0 + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// R rows for every token: groups of 8 tokens (when the R x 8 sums fit the registers), then 4, then 1..3.
template <int R>
void rows_f16_batch(const DenseF16Args& a, int64_t n0) {
  int64_t t = 0;
  if constexpr (R * 8 <= kF16MaxSums)
    for (; t + 8 <= a.tokens; t += 8) rows_f16_tokens<R, 8>(a, n0, t);
  for (; t + 4 <= a.tokens; t += 4) rows_f16_tokens<R, 4>(a, n0, t);
  switch (a.tokens - t) {
    case 3: rows_f16_tokens<R, 3>(a, n0, t); break;
    case 2: rows_f16_tokens<R, 2>(a, n0, t); break;
    case 1: rows_f16_tokens<R, 1>(a, n0, t); break;
    default: break;
  }
}

template <int R>
void gemm_f16_rows(const DenseF16Args& a) {
  int64_t n = a.row_begin;
  for (; n + R <= a.row_end; n += R) rows_f16_batch<R>(a, n);
  for (; n < a.row_end; ++n) rows_f16_batch<1>(a, n);
}

void gemm_f16(const DenseF16Args& a) {
  if (a.tokens == 1) {  // decode: one token, with the next rows prefetched
    int64_t n = a.row_begin;
    for (; n + 4 <= a.row_end; n += 4) rows_f16<4>(a, n);
    for (; n < a.row_end; ++n) rows_f16<1>(a, n);
    return;
  }
  // 8 tokens or more: 3 rows x 8 tokens, each weight converted once per 8 tokens (the head of a batched step of
  // 8 sequences took 25.5 against 27.2 ms with 4 x 4 tiles, `HeadGemv/f16_128256x2560/2/8`). Fewer: 4 x 4.
  if (a.tokens >= 8) return gemm_f16_rows<3>(a);
  gemm_f16_rows<4>(a);
}

}  // namespace

extern const DenseKernels kDenseKernels;
const DenseKernels kDenseKernels = {gemm_i8, gemm_f16, gemm_i4};

}  // namespace bitnet::kernels::avx512
