// Internal: the 256-bit dense kernels, included once per ISA file with BITNET_VARIANT: dense_avx2.cpp (AVX2) and
// dense_avxvnni.cpp (AVX2 + AVX-VNNI, where `vpdpbusd` in its VEX form sums u8 x s8 products straight into int32).
// No include guard on purpose.
// - int8: tiles of 4 rows x 2 tokens over the interleaved layout. AVX2: `vpmaddubsw` with the activations' sign
//   moved to the weights (exact, below); AVX-VNNI: the stored value + 128 (u8) x the activations, 128 x sum(x)
//   taken off after, as the AVX-512 variant does.
// - int4: nibbles (<= 15) x s8; a row group and a token at a time, each (row, group) pair's dot in its own lane
//   (dense.h). AVX2 sums `vpmaddubsw` in 16 bits, AVX-VNNI in int32.
// - f16: F16C conversion + FMA, 4 rows x 1 token (decode) or 3 rows x 4 tokens (batches); the same code in both.
#include <immintrin.h>

#include "kernels/dense.h"
#include "kernels/x86_hsum.h"
#include "kernels/x86_prefetch.h"
#include "kernels/x86_register.h"

namespace bitnet::kernels::BITNET_VARIANT {

static_assert(kDenseI8GroupStride == kPrefetchBlockBytes);

namespace {

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// int8 tile: R rows x T tokens over the interleaved layout (dense.h: a 4-row tile reads one sequential run). AVX2:
// per 32 weights the sign moves to the weights' side, `vpmaddubsw(|x|, sign(v, x))`: |x| <= 128 as u8 (once per
// token) and sign(v, x) = +-v within -127..127 (the quantizer's range, Int8Matrix::quantize), so a pair is at most
// 2 x 128 x 127 < 2^15: no saturation, exact; `vpmaddwd` by ones widens to int32. AVX-VNNI: `vpdpbusd` on the
// stored u8 (v + 128) and x, then 128 x sum(x) off the row sum.
template <int R, int T>
void tile_i8(const DenseI8Args& a, int64_t n0, int64_t t0) {
  [[maybe_unused]] const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), ones = _mm256_set1_epi16(1);
  __m256i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = a.w + dense_i8_offset(n0 + r, 0, a.k_pad);
  // With several tokens, the first token tile of a row group prefetches the group kPrefetchGroupsAhead on
  // (x86_prefetch.h).
  const bool prefetch = R == kDenseI8RowGroup && t0 == 0 && a.tokens > 1;
  const int64_t ahead = kPrefetchGroupsAhead * a.k_pad * kDenseI8RowGroup;
  for (int64_t k = 0; k < a.k_pad; k += 64) {
    if (prefetch) prefetch_group_block(rows[0], ahead + k / 64 * kDenseI8GroupStride);
    for (int half = 0; half < 2; ++half) {
      __m256i w[R];  // AVX2: the values v; AVX-VNNI: v + 128 as stored
      for (int r = 0; r < R; ++r) {
        w[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r] + k / 64 * kDenseI8GroupStride + 32 * half));
#if !defined(__AVXVNNI__)
        w[r] = _mm256_xor_si256(w[r], flip);
#endif
      }
      for (int t = 0; t < T; ++t) {
        const __m256i x =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.x + (t0 + t) * a.x_stride + k + 32 * half));
#if defined(__AVXVNNI__)
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_dpbusd_avx_epi32(acc[r][t], w[r], x);
#else
        const __m256i ax = _mm256_abs_epi8(x);
        for (int r = 0; r < R; ++r)
          acc[r][t] = _mm256_add_epi32(
              acc[r][t],
              _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w[r], x)), ones));
#endif
      }
    }
  }
#if defined(__AVXVNNI__)
  constexpr int32_t kOffset = 128;  // the stored values' offset, taken off with the activations' sum
#else
  constexpr int32_t kOffset = 0;
#endif
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r)
      a.y[(t0 + t) * a.y_stride + n0 + r] = static_cast<float>(hsum_epi32(acc[r][t]) - kOffset * a.x_sum[t0 + t]) *
                                            a.scale[t0 + t] * a.row_scale[n0 + r];
}

template <int R>
void rows_i8(const DenseI8Args& a, int64_t n0) {
  int64_t t = 0;
  for (; t + 2 <= a.tokens; t += 2) tile_i8<R, 2>(a, n0, t);
  for (; t < a.tokens; ++t) tile_i8<R, 1>(a, n0, t);
}

void gemm_i8(const DenseI8Args& a) {
  over_row_groups(a.row_begin, a.row_end, [&](int64_t n) { rows_i8<1>(a, n); }, [&](int64_t n) { rows_i8<4>(a, n); });
}

// One row group (4 rows; past the matrix's last row, its zero padding) and one token. A 256-bit half h of each of
// a super-block's 4 vectors holds rows 2h and 2h + 1, lane 4r' + g (dense.h). AVX2: per half, the 8 steps'
// `vpmaddubsw` (nibble x s8 pairs, at most 2 x 15 x 128 = 3840 in magnitude) add in 16 bits without overflow
// (8 x 3840 < 32768), and one `vpmaddwd` by ones gives each group's sum(u x). AVX-VNNI: two `vpdpbusd` chains, the
// low nibbles (u) and the high ones in place (16 u, one arithmetic shift per half). The group offsets turn sum(u x)
// into sum((u - 8) x), and one conversion and one FMA by the 8 scales add it to the half's float sums.
void gemm_i4(const DenseI4Args& a) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1), high = _mm256_set1_epi8(static_cast<char>(0xf0));
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
#if defined(__AVXVNNI__)
          __m256i d_lo = offsets, d_hi = _mm256_setzero_si256();
#else
          __m256i sum16 = _mm256_setzero_si256();
#endif
          for (int v = 0; v < 4; ++v) {
            const __m256i packed =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * kDenseI4GroupStride + 64 * v + 32 * h));
            const __m256i x_lo =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16 * v)));
            const __m256i x_hi =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 16 * v + 64)));
#if defined(__AVXVNNI__)
            d_lo = _mm256_dpbusd_avx_epi32(d_lo, _mm256_and_si256(packed, nibble), x_lo);
            d_hi = _mm256_dpbusd_avx_epi32(d_hi, _mm256_and_si256(packed, high), x_hi);
#else
            sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(_mm256_and_si256(packed, nibble), x_lo));
            sum16 = _mm256_add_epi16(
                sum16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble), x_hi));
#endif
          }
#if defined(__AVXVNNI__)
          const __m256i dots = _mm256_add_epi32(d_lo, _mm256_srai_epi32(d_hi, 4));
#else
          const __m256i dots = _mm256_add_epi32(_mm256_madd_epi16(sum16, ones), offsets);
#endif
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

// R rows x T tokens of the f16 head. A lane of acc[r][t] adds w[r][k] * x[t][k] for k = lane, lane + 8, ... in
// order whatever R and T are, so a token's logits are the same bits alone or in a batch. Batches take tiles of
// 3 rows x 4 tokens, which convert each 8 weights once for 4 tokens and load each 8 activations once for 3 rows: 12
// FMAs per 7 loads in 16 registers with no spill. On Zen 3 (HeadGemv/f16_128256x2560/2/8, two runs each) 2 x 4
// took 45.0-50.2 ms, 3 x 4 35.9-38.8, 5 x 2 40.5-41.0, 4 x 2 43.9-44.0, 2 x 6 46.1-46.2; 4 x 3 (17 registers)
// 56.2-56.9 and 6 x 2 66.8-79.6 spill. Decode takes 4 rows x 1 token.
template <int R, int T>
void tile_f16(const DenseF16Args& a, int64_t n0, int64_t t0) {
  __m256 acc[R][T];
  for (auto& row : acc)
    for (auto& v : row) v = _mm256_setzero_ps();
  const uint16_t* w = a.w + n0 * a.k_stride;
  const float* x = a.x + t0 * a.x_stride;
  // The head is the file's row-major embedding: R short streams per tile, which a batch's tiles consume slower
  // than the hardware prefetcher expects. With several tokens, the first token tile of rows n0.. prefetches the
  // next tile's rows into L2, a line per row every 32 weights (HeadGemv/f16_128256x2560/2/8 on Zen 3, three
  // pairs: 57.1 / 58.7 / 59.0 -> 50.1 / 49.0 / 46.5 ms). One token streams as fast without it (prefetching there
  // too measured 24.2-26.6 -> 25.3-29.1 ms).
  const bool prefetch = a.tokens > 1 && t0 == 0 && n0 + 2 * R <= a.row_end;
  const uint16_t* next = w + R * a.k_stride;
  int64_t k = 0;
  for (; k + 8 <= a.k; k += 8) {
    if (prefetch && k % 32 == 0)
      for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * a.k_stride + k), _MM_HINT_T1);
    __m256 wv[R];
    for (int r = 0; r < R; ++r)
      wv[r] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + r * a.k_stride + k)));
    for (int t = 0; t < T; ++t) {
      __m256 xv = _mm256_loadu_ps(x + t * a.x_stride + k);
      in_register(xv);  // one load for the R rows' FMAs (x86_register.h): in cache 6 -> 9 of 16 FMA lanes per cycle
      for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float s = hsum_ps(acc[r][t]);
      for (int64_t j = k; j < a.k; ++j) s += _cvtsh_ss(w[r * a.k_stride + j]) * x[t * a.x_stride + j];
      a.y[(t0 + t) * a.y_stride + n0 + r] = s;
    }
  }
}

// All the tokens of rows n0 .. n0 + R - 1: tiles of 4 tokens, then the 1-3 left.
template <int R>
void tokens_f16(const DenseF16Args& a, int64_t n0) {
  int64_t t = 0;
  for (; t + 4 <= a.tokens; t += 4) tile_f16<R, 4>(a, n0, t);
  switch (a.tokens - t) {
    case 3: tile_f16<R, 3>(a, n0, t); break;
    case 2: tile_f16<R, 2>(a, n0, t); break;
    case 1: tile_f16<R, 1>(a, n0, t); break;
    default: break;
  }
}

void gemm_f16(const DenseF16Args& a) {
  int64_t n = a.row_begin;
  if (a.tokens == 1) {  // decode: 4 rows at a time, bound by the stream of weights
    for (; n + 4 <= a.row_end; n += 4) tile_f16<4, 1>(a, n, 0);
  } else {
    for (; n + 3 <= a.row_end; n += 3) tokens_f16<3>(a, n);
    if (n + 2 <= a.row_end) {
      tokens_f16<2>(a, n);
      n += 2;
    }
  }
  for (; n < a.row_end; ++n) tokens_f16<1>(a, n);
}

}  // namespace

extern const DenseKernels kDenseKernels;
const DenseKernels kDenseKernels = {gemm_i8, gemm_f16, gemm_i4};

}  // namespace bitnet::kernels::BITNET_VARIANT
