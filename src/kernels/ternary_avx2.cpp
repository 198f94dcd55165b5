// AVX2 ternary kernel (no VNNI): `vpmaddubsw` (u8 code x s8 activation -> s16 pairs, at most 2*2*128 = 512,
// so no saturation) summed in 16 bits over one 256-weight block (8 products of <= 512: < 2^15), then widened
// with `vpmaddwd` once per block. Tiles of R rows x T tokens as in the AVX-512 variant.
#include <immintrin.h>

#include <algorithm>

#include "kernels/ternary.h"
#include "kernels/ternary_base3.h"
#include "kernels/x86_hsum.h"
#include "kernels/x86_prefetch.h"

namespace bitnet::kernels::avx2 {

static_assert(kTernaryGroupStride == kPrefetchBlockBytes);

namespace {

template <int R, int T>
void tile(const TernaryGemmArgs& a, int64_t n0, int64_t t0) {
  const __m256i mask = _mm256_set1_epi8(3);
  // With several tokens, the first token tile of a row group's first row pair prefetches the group
  // kPrefetchGroupsAhead on (x86_prefetch.h).
  const bool prefetch = n0 % kTernaryRowGroup == 0 && t0 == 0 && a.tokens > 1;
  const uint8_t* group = a.w + ternary_block_offset(n0, 0, a.k_blocks);
  const int64_t ahead = kPrefetchGroupsAhead * a.k_blocks * kTernaryGroupStride;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
  const uint8_t* w[R];
  for (int r = 0; r < R; ++r) w[r] = a.w + ternary_block_offset(n0 + r, 0, a.k_blocks);
  const int8_t* x = a.x + t0 * a.x_stride;
  for (int64_t b = 0; b < a.k_blocks; ++b) {
    if (prefetch) prefetch_group_block(group, ahead + b * kTernaryGroupStride);
    __m256i sum16[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) sum16[r][t] = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {  // bytes 0..31 then 32..63 of the block
      __m256i packed[R];
      for (int r = 0; r < R; ++r)
        packed[r] = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(w[r] + b * kTernaryGroupStride + 32 * half));
      for (int s = 0; s < 4; ++s) {
        __m256i codes[R];
        for (int r = 0; r < R; ++r) codes[r] = _mm256_and_si256(_mm256_srli_epi16(packed[r], 2 * s), mask);
        for (int t = 0; t < T; ++t) {
          const __m256i xv = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(x + t * a.x_stride + b * kTernaryBlock + 64 * s + 32 * half));
          for (int r = 0; r < R; ++r)
            sum16[r][t] = _mm256_add_epi16(sum16[r][t], _mm256_maddubs_epi16(codes[r], xv));
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(sum16[r][t], ones));
  }
  for (int t = 0; t < T; ++t) {
    float* y = a.y + (t0 + t) * a.y_stride + n0;
    const int32_t offset = a.x_sum[t0 + t];
    const float scale = a.scale[t0 + t];
    for (int r = 0; r < R; ++r) y[r] = static_cast<float>(hsum_epi32(acc[r][t]) - offset) * scale;
  }
}

// vpmaddubsw(u, *s): u's unsigned bytes times the signed bytes at s, read by the instruction itself (any
// alignment). Given the activations as values, GCC 12 kept them in registers across the four rows (and then
// spilled the sums in the loop), loading them with vmovdqa although __m256i_u has an alignment of 1.
inline __m256i maddubs_mem(__m256i u, const int8_t* s) {
  __m256i out;
  asm("vpmaddubsw %2, %1, %0" : "=x"(out) : "x"(u), "m"(*reinterpret_cast<const __m256i_u*>(s)));
  return out;
}

// One token (decode's GEMV), 4 rows, as the AVX-VNNI variant's: per 32 bytes of a row, one shift by 4 and two
// masks (0x03, 0x0c) give fields 0 and 2 as codes and fields 1 and 3 as 4 x codes, where shift + mask takes
// three shifts. The products of fields 1 and 3 (lanes that are multiples of 4) are shifted back by 2 at once
// (exact), which keeps one 16-bit sum per row: with four rows, a second sum each and the activations in
// registers, GCC spilled sums in the loop. A lane gains at most 4 x 2 x 2 x 128 = 4096 per block, so 16-bit
// sums widen once per kBlocksPerWiden = 7 blocks (< 2^15). The activations are memory operands
// (maddubs_mem).
void gemv_4rows(const TernaryGemmArgs& a, int64_t n0) {
  constexpr int64_t kBlocksPerWiden = 7;
  const __m256i m0 = _mm256_set1_epi8(0x03), m1 = _mm256_set1_epi8(0x0c), ones = _mm256_set1_epi16(1);
  __m256i acc[4], sum[4];
  // Rows n0..n0+3 need not share a row group (a thread's range may start anywhere); block b of each row is
  // kTernaryGroupStride after block b - 1 either way.
  const uint8_t* w[4];
  for (int r = 0; r < 4; ++r) {
    acc[r] = _mm256_setzero_si256();
    w[r] = a.w + ternary_block_offset(n0 + r, 0, a.k_blocks);
  }
  const int8_t* xp = a.x;
  for (int64_t b0 = 0; b0 < a.k_blocks; b0 += kBlocksPerWiden) {
    for (auto& s : sum) s = _mm256_setzero_si256();
    const int64_t b1 = std::min(b0 + kBlocksPerWiden, a.k_blocks);
    for (int64_t b = b0; b < b1; ++b, xp += kTernaryBlock) {
      for (int half = 0; half < 2; ++half) {
        const int8_t* x = xp + 32 * half;  // x + 64 f: field f's activations
        for (int r = 0; r < 4; ++r) {
          const __m256i v =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r] + b * kTernaryGroupStride + 32 * half));
          const __m256i v4 = _mm256_srli_epi16(v, 4);
          const __m256i even = _mm256_add_epi16(maddubs_mem(_mm256_and_si256(v, m0), x),
                                                maddubs_mem(_mm256_and_si256(v4, m0), x + 128));
          const __m256i odd4 = _mm256_add_epi16(maddubs_mem(_mm256_and_si256(v, m1), x + 64),
                                                maddubs_mem(_mm256_and_si256(v4, m1), x + 192));
          sum[r] = _mm256_add_epi16(sum[r], _mm256_add_epi16(even, _mm256_srai_epi16(odd4, 2)));
        }
      }
    }
    for (int r = 0; r < 4; ++r) acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(sum[r], ones));
  }
  const __m128i dots = _mm_sub_epi32(hsum4_epi32(acc[0], acc[1], acc[2], acc[3]), _mm_set1_epi32(a.x_sum[0]));
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

void gemm(const TernaryGemmArgs& a) {
  int64_t n = a.row_begin;
  if (a.tokens == 1)
    for (; n + 4 <= a.row_end; n += 4) gemv_4rows(a, n);  // then the last 1-3 rows by the tiles
  for (; n + 2 <= a.row_end; n += 2) rows<2>(a, n);
  if (n < a.row_end) rows<1>(a, n);
}

}  // namespace

extern const TernaryKernels kTernaryKernels;
const TernaryKernels kTernaryKernels = {gemm, gemm_base3, ref::encode_base3, false};

}  // namespace bitnet::kernels::avx2
