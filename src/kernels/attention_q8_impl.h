// Internal: the body of the attention_q8 kernel family (attention_q8.h), included once per ISA file with
// BITNET_VARIANT. The plain loops are the reference, and the variant wherever this file has no intrinsics for the
// ISA; with AVX-512 VNNI the products run on vpdpbusd / vpdpwssd, on NEON the scores on sdot. No include guard on
// purpose.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <bitnet/dtype.h>

#include "kernels/attention_q8.h"

#if defined(__AVX512VNNI__) || defined(__AVX2__)
#include <immintrin.h>

#include "kernels/x86_register.h"
#endif
#if defined(__ARM_FEATURE_DOTPROD) && defined(__aarch64__)
#include <arm_neon.h>
#endif

// `omp simd` loops (the files build with -fopenmp-simd): vectorized for each variant's flags.
#define BITNET_SIMD _Pragma("omp simd")

namespace bitnet::kernels::BITNET_VARIANT {
namespace {

inline float block_scale(const uint8_t* block) {
  uint16_t bits;
  std::memcpy(&bits, block, 2);
  return f16_to_f32(bits);
}
// The weighted sum's factor per weight code: m x kStep (a product, not m / 32767: cheaper, and the same in every
// variant).
constexpr float kStep = 1.0f / 32767.0f;
// Cache lines a segment of a key tile (16 rows) and of a value tile (32 rows) spans: what a kernel takes from the
// caller's PrefetchLines per segment it reads (attention_q8.h), so the stream ahead keeps its pace.
constexpr int64_t kKeySegmentLines = (kQ8KeyTileSegmentBytes + 63) / 64;
constexpr int64_t kValueSegmentLines = (kQ8ValueTileSegmentBytes + 63) / 64;

// --- the reference -------------------------------------------------------------------------------------------
// Key tiles (attention_q8.h): segment s of tile t holds the rows' scales, then dword k of every row.
[[maybe_unused]] inline const uint8_t* tile_segment(const uint8_t* tiles, int64_t tile_bytes, int64_t j, int64_t s) {
  return tiles + (j / kQ8KeyTileRows) * tile_bytes + s * kQ8KeyTileSegmentBytes;
}

// A tile at a time, its 16 rows in the innermost loops (stride-4 byte loads: NEON's ld4 where it vectorizes).
[[maybe_unused]] void scores_plain(const uint8_t* tiles, int64_t n_rows, int64_t head_dim, const Q8Queries& queries,
                                   int64_t g, float* out, int64_t out_stride, PrefetchLines* prefetch) {
  const int64_t segs = q8_segments(head_dim), tile_bytes = q8_key_tile_bytes(head_dim);
  for (int64_t j0 = 0; j0 < n_rows; j0 += kQ8KeyTileRows) {
    take_lines(prefetch, segs * kKeySegmentLines);
    const uint8_t* tile = tiles + (j0 / kQ8KeyTileRows) * tile_bytes;
    const int64_t nr = std::min(kQ8KeyTileRows, n_rows - j0);
    for (int64_t q = 0; q < g; ++q) {
      float acc[kQ8KeyTileRows] = {};
      for (int64_t s = 0; s < segs; ++s) {
        const uint8_t* seg = tile + s * kQ8KeyTileSegmentBytes;
        const int8_t* c = queries.codes + (q * segs + s) * kQ8Block;
        int32_t dot[kQ8KeyTileRows] = {};  // codes past the segment's length are 0 in both
        for (int64_t i = 0; i < kQ8Block; ++i) {
          const auto* column = reinterpret_cast<const int8_t*>(seg + kQ8KeyTileScaleBytes + (i / 4) * 64 + i % 4);
          const int32_t ci = c[i];
          BITNET_SIMD for (int64_t l = 0; l < kQ8KeyTileRows; ++l) dot[l] += static_cast<int32_t>(column[4 * l]) * ci;
        }
        const float e = queries.scales[q * segs + s];
        for (int64_t l = 0; l < kQ8KeyTileRows; ++l)
          acc[l] = std::fma(static_cast<float>(dot[l]), block_scale(seg + 2 * l) * e, acc[l]);
      }
      std::copy(acc, acc + nr, out + q * out_stride + j0);
    }
  }
}

// The 15-bit weights of one group's rows for query weights a (n rows): codes and the factor m / 32767.
inline float round_weights(const float* a, const float* d, int64_t n, int32_t* codes) {
  float m = 0.0f;
  bool finite = true;
  float w[kQ8SumRows];
  for (int64_t j = 0; j < n; ++j) {
    w[j] = a[j] * d[j];
    if (std::isfinite(w[j])) m = std::max(m, std::fabs(w[j]));
    else finite = false;
  }
  if (!finite) {
    std::fill(codes, codes + n, 0);
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float inv = m > 0.0f ? 32767.0f / m : 0.0f;
  for (int64_t j = 0; j < n; ++j) codes[j] = static_cast<int32_t>(std::nearbyint(w[j] * inv));
  return m * kStep;
}

// Value tiles (attention_q8.h): row j's codes of a segment, every other byte of its pair's line from here.
[[maybe_unused]] inline const int8_t* value_codes(const uint8_t* seg, int64_t j) {
  return reinterpret_cast<const int8_t*>(seg + kQ8ValueTileScaleBytes + (j / 2) * 64 + j % 2);
}

[[maybe_unused]] void weighted_sum_plain(const float* a, int64_t a_stride, const uint8_t* tiles, int64_t n_rows,
                                         int64_t head_dim, float* y, int64_t g, PrefetchLines* prefetch) {
  const int64_t segs = q8_segments(head_dim), tile_bytes = q8_value_tile_bytes(head_dim);
  for (int64_t j0 = 0; j0 < n_rows; j0 += kQ8SumRows) {
    take_lines(prefetch, segs * kValueSegmentLines);
    const int64_t nr = std::min(kQ8SumRows, n_rows - j0);
    const uint8_t* tile = tiles + (j0 / kQ8ValueTileRows) * tile_bytes;
    for (int64_t s = 0; s < segs; ++s) {
      const int64_t len = q8_segment_length(head_dim, s);
      const uint8_t* seg = tile + s * kQ8ValueTileSegmentBytes;
      float d[kQ8SumRows];
      for (int64_t j = 0; j < nr; ++j) d[j] = block_scale(seg + 2 * j);
      for (int64_t q = 0; q < g; ++q) {
        int32_t codes[kQ8SumRows];
        const float factor = round_weights(a + q * a_stride + j0, d, nr, codes);
        int32_t sums[kQ8Block] = {};
        for (int64_t j = 0; j < nr; ++j) {
          const int8_t* v = value_codes(seg, j);
          const int32_t c = codes[j];
          BITNET_SIMD for (int64_t i = 0; i < len; ++i) sums[i] += c * v[2 * i];  // NEON: ld2
        }
        float* out = y + q * head_dim + s * kQ8Block;
        for (int64_t i = 0; i < len; ++i) out[i] = std::fma(static_cast<float>(sums[i]), factor, out[i]);
      }
    }
  }
}

// The g queries of a group in passes of up to 4, the count a template argument of `pass` (a generic lambda taking
// <int G>(int64_t q0)): a pass's accumulators stay in registers, and its query loops unroll (with a run-time count
// GCC 12 kept a compare and branch per query and product, and spilled). Used by the x86 kernels. The AVX2 passes
// are noinline: called once each from here, GCC 12 inlined all four scores passes into the caller, which ran 1.5x
// slower (BM_Q8Scores/isa:1, four alternating runs).
template <class Pass>
[[maybe_unused]] void by_passes(int64_t g, Pass&& pass) {
  for (int64_t q0 = 0; q0 < g; q0 += 4) {
    switch (std::min<int64_t>(4, g - q0)) {
      case 1: pass.template operator()<1>(q0); break;
      case 2: pass.template operator()<2>(q0); break;
      case 3: pass.template operator()<3>(q0); break;
      default: pass.template operator()<4>(q0); break;
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512VNNI__)
// --- AVX2 ------------------------------------------------------------------------------------------------------
// Scores of 8 rows (half a tile) at a time, one lane per row: each key dword against the query's broadcast dword
// with vpmaddubsw on |key| and the query's codes carrying the key's sign (at most 2 x 128 x 127 per pair of bytes:
// no saturation), then vpmaddwd to int32; the same fma per segment as the reference. GQ = 1..4 queries per pass,
// a template argument (by_passes) so that the query loop unrolls: with a run-time count GCC 12 kept a compare and
// branch per query and product and spilled the accumulators (BM_Q8Scores/isa:1 ran at about 10 products per cycle).
// Compiled twice: as the avx2 variant, and with AVX-VNNI as the avxvnni one, where `vpdpbusd` and `vpdpwssd` (VEX)
// sum the same products straight into int32 (here and in the weighted sum below).
template <int GQ>
[[gnu::noinline]] void scores_pass_avx2(const uint8_t* tiles, int64_t n_rows, int64_t head_dim,
                                        const Q8Queries& queries, int64_t q0, float* out, int64_t out_stride,
                                        PrefetchLines* prefetch) {
  const int64_t segs = q8_segments(head_dim), tile_bytes = q8_key_tile_bytes(head_dim);
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t j0 = 0; j0 < n_rows; j0 += 8) {
    const int64_t half = (j0 % kQ8KeyTileRows) / 8;
    __m256 acc[GQ];
    for (__m256& v : acc) v = _mm256_setzero_ps();
    for (int64_t s = 0; s < segs; ++s) {
      take_lines(prefetch, (kKeySegmentLines + 1) / 2);  // half a tile's segment
      const uint8_t* seg = tile_segment(tiles, tile_bytes, j0, s);
      const int8_t* codes = queries.codes + (q0 * segs + s) * kQ8Block;  // query q0 + q's at + q * segs * 32
      __m256i dot[GQ];
      for (__m256i& v : dot) v = _mm256_setzero_si256();
      for (int64_t k = 0; k < kQ8Block / 4; ++k) {
        const __m256i key =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(seg + kQ8KeyTileScaleBytes + 64 * k + 32 * half));
        const __m256i magnitude = _mm256_sign_epi8(key, key);
        for (int q = 0; q < GQ; ++q) {
          int32_t word;
          std::memcpy(&word, codes + q * segs * kQ8Block + 4 * k, 4);
          const __m256i c = _mm256_sign_epi8(_mm256_set1_epi32(word), key);
#if defined(__AVXVNNI__)  // the avxvnni variant: the same products, summed in int32 by one instruction
          dot[q] = _mm256_dpbusd_avx_epi32(dot[q], magnitude, c);
#else
          dot[q] = _mm256_add_epi32(dot[q], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, c), ones));
#endif
          in_register(dot[q]);  // one chain of adds in a register (x86_register.h): GCC 12 spilled a tree
        }
      }
      const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(seg + 16 * half)));
      for (int q = 0; q < GQ; ++q) {
        const __m256 w = _mm256_mul_ps(d, _mm256_set1_ps(queries.scales[(q0 + q) * segs + s]));
        acc[q] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[q]), w, acc[q]);
      }
    }
    const int64_t nr = std::min<int64_t>(8, n_rows - j0);
    for (int q = 0; q < GQ; ++q) {
      float* o = out + (q0 + q) * out_stride + j0;
      if (nr == 8) {
        _mm256_storeu_ps(o, acc[q]);
      } else {
        alignas(32) float got[8];
        _mm256_store_ps(got, acc[q]);
        std::copy(got, got + nr, o);
      }
    }
  }
}

void scores_avx2(const uint8_t* tiles, int64_t n_rows, int64_t head_dim, const Q8Queries& queries, int64_t g,
                 float* out, int64_t out_stride, PrefetchLines* prefetch) {
  by_passes(g, [&]<int GQ>(int64_t q0) {
    scores_pass_avx2<GQ>(tiles, n_rows, head_dim, queries, q0, out, out_stride, prefetch);
  });
}

// Lanes [0, k) of 8 set (for masked loads and stores).
inline __m256i lanes_below(int64_t k) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// round_weights, 8 lanes at a time, for a group of n rows (d: 32 scales, 0 past n): the codes as int16 pairs, rows
// 2i and 2i + 1 in dword i of `pairs` (16 dwords); returns the factor. The largest |w| is taken on the float bits
// as unsigned integers (the same order for values >= 0; NaN and infinity above every finite value).
inline float round_weights_avx2(const float* a, const float* d, int64_t n, int32_t* pairs) {
  __m256 w[4];
  __m256i top = _mm256_setzero_si256();
  const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
  for (int h = 0; h < 4; ++h) {
    w[h] = _mm256_mul_ps(_mm256_maskload_ps(a + 8 * h, lanes_below(n - 8 * h)), _mm256_load_ps(d + 8 * h));
    top = _mm256_max_epu32(top, _mm256_and_si256(_mm256_castps_si256(w[h]), magnitude));
  }
  __m128i t4 = _mm_max_epu32(_mm256_castsi256_si128(top), _mm256_extracti128_si256(top, 1));
  t4 = _mm_max_epu32(t4, _mm_shuffle_epi32(t4, 0x4e));
  t4 = _mm_max_epu32(t4, _mm_shuffle_epi32(t4, 0xb1));
  const float m = std::bit_cast<float>(_mm_cvtsi128_si32(t4));
  if (!(m < std::numeric_limits<float>::infinity())) {  // NaN or infinity
    std::fill(pairs, pairs + kQ8SumRows / 2, 0);
    return std::numeric_limits<float>::quiet_NaN();
  }
  const __m256 inv = _mm256_set1_ps(m > 0.0f ? 32767.0f / m : 0.0f);
  for (int h = 0; h < 4; h += 2) {
    // packs interleaves 128-bit lanes; the permute puts rows 16h/2 .. 16h/2 + 15 back in order.
    const __m256i c = _mm256_packs_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(w[h], inv)),
                                         _mm256_cvtps_epi32(_mm256_mul_ps(w[h + 1], inv)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pairs + 4 * h), _mm256_permute4x64_epi64(c, 0xd8));
  }
  return m * kStep;
}

// The weighted sum: a value tile's line holds rows 2i and 2i + 1 interleaved, so 16 of its bytes widened to int16
// are 8 values' pairs, and one vpmaddwd per query adds both rows' products (the pair's weight codes one broadcast
// dword). A pass takes GQ = 1..4 queries over up to 4 segments of a group: first all their weights are rounded
// (each a long chain of dependent steps -- a maximum across lanes, a division -- so 16 chains in a row overlap
// where one segment's 4 waited), then each half of a segment (2 x 8 values) takes every pair of rows into GQ x 2
// accumulators, the queries sharing each widened line. Rounding per segment with 2 queries per widening ran 1.13x
// slower on Zen 3 (BM_Q8WeightedSum/isa:1: about 12 against 13.5 products per cycle).
template <int GQ>
[[gnu::noinline]] void weighted_sum_pass_avx2(const float* a, int64_t a_stride, const uint8_t* tile, int64_t nr,
                                              int64_t head_dim, float* y, PrefetchLines* prefetch) {
  constexpr int64_t kRoundedSegments = 4;
  const int64_t segs = q8_segments(head_dim), pairs_in = (nr + 1) / 2;
  for (int64_t s0 = 0; s0 < segs; s0 += kRoundedSegments) {
    const int64_t ns = std::min(kRoundedSegments, segs - s0);
    // Not zero-initialized: every entry read is written by round_weights_avx2 first (`= {}` compiled to a
    // `rep stos` that cost about a tenth of the kernel, measured with the earlier per-segment codes).
    alignas(32) int32_t pairs[kRoundedSegments][GQ][kQ8SumRows / 2];
    float factor[kRoundedSegments][GQ];
    for (int64_t b = 0; b < ns; ++b) {
      const uint8_t* seg = tile + (s0 + b) * kQ8ValueTileSegmentBytes;
      // The rows' scales, 0 past the last row (a stale row's scale may be anything, even NaN).
      alignas(32) float d[kQ8SumRows];
      for (int64_t h = 0; h < 4; ++h) {
        const __m256 scale = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(seg + 16 * h)));
        _mm256_store_ps(d + 8 * h, _mm256_and_ps(scale, _mm256_castsi256_ps(lanes_below(nr - 8 * h))));
      }
      for (int q = 0; q < GQ; ++q) factor[b][q] = round_weights_avx2(a + q * a_stride, d, nr, pairs[b][q]);
    }
    for (int64_t b = 0; b < ns; ++b) {
      const int64_t s = s0 + b, len = q8_segment_length(head_dim, s);
      for (int64_t h0 = 0; h0 < 4 && 8 * h0 < len; h0 += 2) {
        take_lines(prefetch, (kValueSegmentLines + 1) / 2);  // half a segment's lines
        __m256i acc[GQ][2];
        for (auto& per_query : acc)
          for (__m256i& v : per_query) v = _mm256_setzero_si256();
        const uint8_t* line = tile + s * kQ8ValueTileSegmentBytes + kQ8ValueTileScaleBytes + 16 * h0;
        for (int64_t i = 0; i < pairs_in; ++i, line += 64) {
          // Both halves are read where the second lies past the segment's length too (within the line; not stored).
          const __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(line)));
          const __m256i x1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(line + 16)));
          for (int q = 0; q < GQ; ++q) {
            const __m256i w = _mm256_set1_epi32(pairs[b][q][i]);
#if defined(__AVXVNNI__)
            acc[q][0] = _mm256_dpwssd_avx_epi32(acc[q][0], x0, w);
            acc[q][1] = _mm256_dpwssd_avx_epi32(acc[q][1], x1, w);
#else
            acc[q][0] = _mm256_add_epi32(acc[q][0], _mm256_madd_epi16(x0, w));
            acc[q][1] = _mm256_add_epi32(acc[q][1], _mm256_madd_epi16(x1, w));
#endif
          }
        }
        for (int q = 0; q < GQ; ++q) {
          const __m256 f = _mm256_set1_ps(factor[b][q]);
          for (int64_t h = h0; h < h0 + 2 && 8 * h < len; ++h) {
            float* out = y + q * head_dim + s * kQ8Block + 8 * h;
            const __m256 sums = _mm256_cvtepi32_ps(acc[q][h - h0]);
            // Masked only in a segment's tail: a masked store took about 14 cycles on Zen 3 (a plain one, 1), and
            // these were over a third of the weighted sum's time there.
            if (len - 8 * h >= 8) {
              _mm256_storeu_ps(out, _mm256_fmadd_ps(sums, f, _mm256_loadu_ps(out)));
            } else {
              const __m256i keep = lanes_below(len - 8 * h);
              _mm256_maskstore_ps(out, keep, _mm256_fmadd_ps(sums, f, _mm256_maskload_ps(out, keep)));
            }
          }
        }
      }
    }
  }
}

void weighted_sum_avx2(const float* a, int64_t a_stride, const uint8_t* tiles, int64_t n_rows, int64_t head_dim,
                       float* y, int64_t g, PrefetchLines* prefetch) {
  const int64_t tile_bytes = q8_value_tile_bytes(head_dim);
  for (int64_t j0 = 0; j0 < n_rows; j0 += kQ8SumRows) {
    const int64_t nr = std::min(kQ8SumRows, n_rows - j0);
    const uint8_t* tile = tiles + (j0 / kQ8ValueTileRows) * tile_bytes;
    by_passes(g, [&]<int GQ>(int64_t q0) {
      weighted_sum_pass_avx2<GQ>(a + q0 * a_stride + j0, a_stride, tile, nr, head_dim, y + q0 * head_dim, prefetch);
    });
  }
}
#endif

#if defined(__AVX512VNNI__)
// --- AVX-512 VNNI ----------------------------------------------------------------------------------------------
// vpdpwssd tied to its accumulator: GCC 12 copies the accumulator to another register around most
// _mm512_dpwssd_epi32 (half the instructions of the weighted sum's inner loop were such copies; with the intrinsic
// the kernel takes 1.33 µs per unit against 0.90). The second operand is one dword in memory, broadcast ({1to16}):
// a separate broadcast costs an instruction each. The scores go the other way: with the same asm, GCC stored each of
// their accumulators to the stack after every vpdpbusd (0.77 µs per unit), with the intrinsic it keeps them in
// registers (0.37).
inline void dpwssd(__m512i& acc, __m512i a, const int32_t* b) {
  asm("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*b));
}

inline __mmask32 codes_mask(int64_t len) { return len >= 32 ? ~__mmask32{0} : (__mmask32{1} << len) - 1; }

// Scores of a tile (16 rows, lane l = row l) at a time: one vpdpbusd per key dword and query adds 4 products of
// all 16 rows. The keys are made unsigned (+128, by flipping the top bit), and the accumulator starts at -128 x the
// query's code sum.
template <int G>
void scores_pass(const uint8_t* tiles, int64_t n_rows, int64_t tile_bytes, const int8_t* codes, const float* scales,
                 const int32_t* sums, int64_t segs, float* out, int64_t out_stride, PrefetchLines* prefetch) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t j0 = 0; j0 < n_rows; j0 += kQ8KeyTileRows) {
    const uint8_t* tile = tiles + (j0 / kQ8KeyTileRows) * tile_bytes;
    __m512 acc[G];
    for (int q = 0; q < G; ++q) acc[q] = _mm512_setzero_ps();
    for (int64_t s = 0; s < segs; ++s) {
      take_lines(prefetch, kKeySegmentLines);
      const uint8_t* seg = tile + s * kQ8KeyTileSegmentBytes;
      const __m512 d = _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(seg)));
      __m512i dot[G];
      const int32_t* query[G];
      for (int q = 0; q < G; ++q) {
        dot[q] = _mm512_set1_epi32(-128 * sums[q * segs + s]);
        query[q] = reinterpret_cast<const int32_t*>(codes + (q * segs + s) * kQ8Block);
      }
      for (int k = 0; k < kQ8Block / 4; ++k) {
        const __m512i key = _mm512_xor_si512(_mm512_loadu_si512(seg + kQ8KeyTileScaleBytes + 64 * k), flip);
        for (int q = 0; q < G; ++q) dot[q] = _mm512_dpbusd_epi32(dot[q], key, _mm512_set1_epi32(query[q][k]));
      }
      for (int q = 0; q < G; ++q) {
        const __m512 w = _mm512_mul_ps(d, _mm512_set1_ps(scales[q * segs + s]));
        acc[q] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, dot[q]), w, acc[q]);
      }
    }
    const int64_t nr = std::min<int64_t>(kQ8KeyTileRows, n_rows - j0);
    const auto keep = static_cast<__mmask16>((1u << nr) - 1u);
    for (int q = 0; q < G; ++q) _mm512_mask_storeu_ps(out + q * out_stride + j0, keep, acc[q]);
  }
}

void scores_vnni(const uint8_t* tiles, int64_t n_rows, int64_t head_dim, const Q8Queries& queries, int64_t g,
                 float* out, int64_t out_stride, PrefetchLines* prefetch) {
  const int64_t segs = q8_segments(head_dim), tile_bytes = q8_key_tile_bytes(head_dim);
  by_passes(g, [&]<int G>(int64_t q0) {
    scores_pass<G>(tiles, n_rows, tile_bytes, queries.codes + q0 * segs * kQ8Block, queries.scales + q0 * segs,
                   queries.sums + q0 * segs, segs, out + q0 * out_stride, out_stride, prefetch);
  });
}

// The largest of 16 uint32 lanes.
inline uint32_t max_lane(__m512i v) {
  // Zero-masked extracts: GCC 12's plain ones warn of an uninitialized temporary.
  const __m256i m8 =
      _mm256_max_epu32(_mm512_maskz_extracti32x8_epi32(0xff, v, 0), _mm512_maskz_extracti32x8_epi32(0xff, v, 1));
  __m128i m4 = _mm_max_epu32(_mm256_castsi256_si128(m8), _mm256_extracti128_si256(m8, 1));
  m4 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, 0x4e));
  m4 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, 0xb1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(m4));
}

// The weighted sum, a value tile (32 rows, one group) at a time, segments 4 at a time.
// - The weights: w = a x d for each query and segment (0 past the last row, whose stale scale may be anything);
//   the largest |w| is taken on the float bits as unsigned integers (the same order for values >= 0, and NaN and
//   infinity above every finite value, so one test on the largest finds them); then the 15-bit codes, as the
//   reference.
// - The sums: a tile's line holds rows 2i and 2i + 1 interleaved, so its 32-byte halves widened to int16 are 16
//   values' pairs, and one vpdpwssd per query adds both rows' products, the pair's two weight codes one broadcast
//   dword. Accumulator `lo` holds values 0-15 of the segment, `hi` 16-31, in order.
template <int G>
void weighted_sum_pass(const float* a, int64_t a_stride, const uint8_t* tiles, int64_t n_rows, int64_t head_dim,
                       float* y, int64_t segs, PrefetchLines* prefetch) {
  constexpr int kBatch = 4;  // segments whose weights are rounded together
  const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
  const int64_t tile_bytes = q8_value_tile_bytes(head_dim);
  for (int64_t j0 = 0; j0 < n_rows; j0 += kQ8SumRows) {
    const int64_t nr = std::min(kQ8SumRows, n_rows - j0), pairs_in = (nr + 1) / 2;
    const uint8_t* tile = tiles + (j0 / kQ8ValueTileRows) * tile_bytes;
    const __mmask16 in[2] = {static_cast<__mmask16>(nr >= 16 ? 0xffffu : (1u << nr) - 1u),
                             static_cast<__mmask16>(nr <= 16 ? 0u : nr >= 32 ? 0xffffu : (1u << (nr - 16)) - 1u)};
    __m512 weights[G][2];
    for (int q = 0; q < G; ++q)
      for (int h = 0; h < 2; ++h) weights[q][h] = _mm512_maskz_loadu_ps(in[h], a + q * a_stride + j0 + 16 * h);
    for (int64_t s0 = 0; s0 < segs; s0 += kBatch) {
      const int64_t batch = std::min<int64_t>(kBatch, segs - s0);
      __m512 d[kBatch][2];
      for (int64_t b = 0; b < batch; ++b)
        for (int h = 0; h < 2; ++h) {
          const uint8_t* scales = tile + (s0 + b) * kQ8ValueTileSegmentBytes + 32 * h;
          d[b][h] = _mm512_maskz_cvtph_ps(in[h], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
        }
      uint32_t top[kBatch][G];
      for (int64_t b = 0; b < batch; ++b)
        for (int q = 0; q < G; ++q) {
          const __m512i w0 = _mm512_castps_si512(_mm512_mul_ps(weights[q][0], d[b][0]));
          const __m512i w1 = _mm512_castps_si512(_mm512_mul_ps(weights[q][1], d[b][1]));
          const __m512i m0 = _mm512_and_si512(w0, magnitude), m1 = _mm512_and_si512(w1, magnitude);
          top[b][q] = max_lane(_mm512_maskz_max_epu32(0xffff, m0, m1));
        }
      // Pairs of 15-bit codes (rows 2i, 2i + 1 in dword i), written as vectors and read as dwords.
      alignas(64) int32_t codes[kBatch][G][kQ8SumRows / 2];
      float factor[kBatch][G];
      for (int64_t b = 0; b < batch; ++b)
        for (int q = 0; q < G; ++q) {
          const float m = std::bit_cast<float>(top[b][q]);
          if (!(m < std::numeric_limits<float>::infinity())) {  // NaN or infinity
            std::fill(codes[b][q], codes[b][q] + kQ8SumRows / 2, 0);
            factor[b][q] = std::numeric_limits<float>::quiet_NaN();
            continue;
          }
          const __m512 inv = _mm512_set1_ps(m > 0.0f ? 32767.0f / m : 0.0f);
          factor[b][q] = m * kStep;
          for (int h = 0; h < 2; ++h) {
            const __m512 w = _mm512_mul_ps(weights[q][h], d[b][h]);
            const __m512i code = _mm512_maskz_cvtps_epi32(0xffff, _mm512_mul_ps(w, inv));
            _mm256_store_si256(reinterpret_cast<__m256i*>(codes[b][q] + 8 * h),
                               _mm512_maskz_cvtepi32_epi16(0xffff, code));
          }
        }
      for (int64_t b = 0; b < batch; ++b) {
        take_lines(prefetch, kValueSegmentLines);
        const int64_t s = s0 + b, len = q8_segment_length(head_dim, s);
        const uint8_t* lines = tile + s * kQ8ValueTileSegmentBytes + kQ8ValueTileScaleBytes;
        __m512i lo[G], hi[G];
        for (int q = 0; q < G; ++q) {
          lo[q] = _mm512_setzero_si512();
          hi[q] = _mm512_setzero_si512();
        }
        const bool wide = len > 16;
        for (int64_t i = 0; i < pairs_in; ++i) {
          const uint8_t* line = lines + 64 * i;
          const __m512i va = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(line)));
          for (int q = 0; q < G; ++q) dpwssd(lo[q], va, codes[b][q] + i);
          if (wide) {
            const __m512i vb = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + 32)));
            for (int q = 0; q < G; ++q) dpwssd(hi[q], vb, codes[b][q] + i);
          }
        }
        const auto m0 = static_cast<__mmask16>(codes_mask(len)), m1 = static_cast<__mmask16>(codes_mask(len) >> 16);
        for (int q = 0; q < G; ++q) {
          float* out = y + q * head_dim + s * kQ8Block;
          const __m512 f = _mm512_set1_ps(factor[b][q]);
          _mm512_mask_storeu_ps(
              out, m0, _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, lo[q]), f, _mm512_maskz_loadu_ps(m0, out)));
          if (m1 != 0)
            _mm512_mask_storeu_ps(out + 16, m1,
                                  _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, hi[q]), f,
                                                  _mm512_maskz_loadu_ps(m1, out + 16)));
        }
      }
    }
  }
}

void weighted_sum_vnni(const float* a, int64_t a_stride, const uint8_t* tiles, int64_t n_rows, int64_t head_dim,
                       float* y, int64_t g, PrefetchLines* prefetch) {
  const int64_t segs = q8_segments(head_dim);
  by_passes(g, [&]<int G>(int64_t q0) {
    weighted_sum_pass<G>(a + q0 * a_stride, a_stride, tiles, n_rows, head_dim, y + q0 * head_dim, segs, prefetch);
  });
}
#endif

#if defined(__ARM_FEATURE_DOTPROD) && defined(__aarch64__)
// --- NEON with the dot product extension (sdot) -------------------------------------------------------------------
// Scores of a tile at a time: the 64 bytes of key dword k are 4 registers of 4 rows each, and one sdot per register
// and query adds the dword's 4 products of 4 rows (the query dword duplicated in every lane). Up to 4 queries
// per pass share the key loads. The same fma per segment as the reference. The weighted sum runs the plain loops.
void scores_neon(const uint8_t* tiles, int64_t n_rows, int64_t head_dim, const Q8Queries& queries, int64_t g,
                 float* out, int64_t out_stride, PrefetchLines* prefetch) {
  const int64_t segs = q8_segments(head_dim), tile_bytes = q8_key_tile_bytes(head_dim);
  for (int64_t q0 = 0; q0 < g; q0 += 4) {
    const int64_t gq = std::min<int64_t>(4, g - q0);
    for (int64_t j0 = 0; j0 < n_rows; j0 += kQ8KeyTileRows) {
      const uint8_t* tile = tiles + (j0 / kQ8KeyTileRows) * tile_bytes;
      float32x4_t acc[4][4];
      for (auto& per_query : acc)
        for (float32x4_t& v : per_query) v = vdupq_n_f32(0.0f);
      for (int64_t s = 0; s < segs; ++s) {
        take_lines(prefetch, kKeySegmentLines);
        const uint8_t* seg = tile + s * kQ8KeyTileSegmentBytes;
        int32x4_t dot[4][4];
        for (auto& per_query : dot)
          for (int32x4_t& v : per_query) v = vdupq_n_s32(0);
        for (int64_t k = 0; k < kQ8Block / 4; ++k) {
          int8x16_t key[4];
          for (int r = 0; r < 4; ++r)
            key[r] = vld1q_s8(reinterpret_cast<const int8_t*>(seg + kQ8KeyTileScaleBytes + 64 * k + 16 * r));
          for (int64_t q = 0; q < gq; ++q) {
            int32_t word;
            std::memcpy(&word, queries.codes + ((q0 + q) * segs + s) * kQ8Block + 4 * k, 4);
            const int8x16_t c = vreinterpretq_s8_s32(vdupq_n_s32(word));
            for (int r = 0; r < 4; ++r) dot[q][r] = vdotq_s32(dot[q][r], key[r], c);
          }
        }
        for (int r = 0; r < 4; ++r) {
          const float32x4_t d = vcvt_f32_f16(vld1_f16(reinterpret_cast<const float16_t*>(seg + 8 * r)));
          for (int64_t q = 0; q < gq; ++q) {
            const float32x4_t w = vmulq_f32(d, vdupq_n_f32(queries.scales[(q0 + q) * segs + s]));
            acc[q][r] = vfmaq_f32(acc[q][r], vcvtq_f32_s32(dot[q][r]), w);
          }
        }
      }
      const int64_t nr = std::min(kQ8KeyTileRows, n_rows - j0);
      alignas(16) float got[kQ8KeyTileRows];
      for (int64_t q = 0; q < gq; ++q) {
        for (int r = 0; r < 4; ++r) vst1q_f32(got + 4 * r, acc[q][r]);
        std::copy(got, got + nr, out + (q0 + q) * out_stride + j0);
      }
    }
  }
}
#endif

}  // namespace

extern const AttentionQ8Kernels kAttentionQ8Kernels;
#if defined(__AVX512VNNI__)
const AttentionQ8Kernels kAttentionQ8Kernels = {scores_vnni, weighted_sum_vnni};
#elif defined(__AVX2__) && defined(__FMA__)
const AttentionQ8Kernels kAttentionQ8Kernels = {scores_avx2, weighted_sum_avx2};
#elif defined(__ARM_FEATURE_DOTPROD) && defined(__aarch64__)
const AttentionQ8Kernels kAttentionQ8Kernels = {scores_neon, weighted_sum_plain};
#else
const AttentionQ8Kernels kAttentionQ8Kernels = {scores_plain, weighted_sum_plain};
#endif

}  // namespace bitnet::kernels::BITNET_VARIANT

#undef BITNET_SIMD
