// AVX2 ternary kernel (no VNNI): `vpmaddubsw` (u8 code x s8 activation -> s16 pairs, at most 2*2*128 = 512,
// so no saturation) summed in 16 bits over one 256-weight block (8 products of <= 512: < 2^15), then widened
// with `vpmaddwd` once per block. Tiles of R rows x T tokens as in the AVX-512 variant.
#include <immintrin.h>

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
  for (; n + 2 <= a.row_end; n += 2) rows<2>(a, n);
  if (n < a.row_end) rows<1>(a, n);
}

}  // namespace

extern const TernaryKernels kTernaryKernels;
const TernaryKernels kTernaryKernels = {gemm, gemm_base3, ref::encode_base3, false};

}  // namespace bitnet::kernels::avx2
