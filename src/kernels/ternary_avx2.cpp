// AVX2 ternary kernel (no VNNI): `vpmaddubsw` (u8 code x s8 activation -> s16 pairs, at most 2*2*128 = 512,
// so no saturation) summed in 16 bits over a few blocks (at most 2^15), then widened with `vpmaddwd`.
// Three shapes: decode's GEMV (gemv_4rows: 4 rows, one token) and the multi-token tiles (tile_2xT: 2 rows x 4
// or 2 tokens) are asm statements, one block per statement, since GCC 12 spilled their sums with intrinsics; the
// remainders (a last token, an odd last row) are the intrinsic tiles of R rows x T tokens.
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

// One row's 32 bytes at w + OFF against the activations at x + OFF (fields f at + 64 f), into its sums A (fields 0
// and 2, as codes) and B (fields 1 and 3, as 4 x codes): one load, one shift, 4 and, 4 vpmaddubsw (activations
// read from memory by the instruction, any alignment), 4 adds. Four temporaries, renamed by the core.
#define BITNET_AVX2_ROW_HALF(W, OFF, A, B)                                                        \
  "vmovdqu " #OFF "(%[" #W "]), %[v]\n\t"                                                           \
  "vpand %[m0], %[v], %[t0]\n\t"                                                                    \
  "vpand %[m1], %[v], %[t1]\n\t"                                                                    \
  "vpsrlw $4, %[v], %[v]\n\t"                                                                       \
  "vpand %[m0], %[v], %[t2]\n\t"                                                                    \
  "vpand %[m1], %[v], %[v]\n\t"                                                                     \
  "vpmaddubsw " #OFF "(%[x]), %[t0], %[t0]\n\t"                                                     \
  "vpmaddubsw 64+" #OFF "(%[x]), %[t1], %[t1]\n\t"                                                  \
  "vpmaddubsw 128+" #OFF "(%[x]), %[t2], %[t2]\n\t"                                                 \
  "vpmaddubsw 192+" #OFF "(%[x]), %[v], %[v]\n\t"                                                   \
  "vpaddw %[t0], %[" #A "], %[" #A "]\n\t"                                                          \
  "vpaddw %[t1], %[" #B "], %[" #B "]\n\t"                                                          \
  "vpaddw %[t2], %[" #A "], %[" #A "]\n\t"                                                          \
  "vpaddw %[v], %[" #B "], %[" #B "]\n\t"

// One token (decode's GEMV), 4 rows, as the AVX-VNNI variant's: per 32 bytes of a row, one shift by 4 and two
// masks (0x03, 0x0c) give fields 0 and 2 as codes (into the 16-bit sums A) and fields 1 and 3 as 4 x codes (into
// B), where shift + mask takes three shifts. A lane of B is a multiple of 4, so A + B / 4 is exact. A lane gains
// at most 4 x 2 x 2 x 128 = 2048 per block in A and 8192 in B, so both widen once per kBlocksPerWiden = 3 blocks
// (< 2^15). A block of the 4 rows is one asm statement: with intrinsics GCC 12 kept the activations in registers
// across the rows, spilled the sums in the loop (and loaded the activations with vmovdqa, although __m256i_u
// has an alignment of 1), and ran at about 70% of the speed of this instruction sequence in L1.
void gemv_4rows(const TernaryGemmArgs& a, int64_t n0) {
  constexpr int64_t kBlocksPerWiden = 3;
  const __m256i m0 = _mm256_set1_epi8(0x03), m1 = _mm256_set1_epi8(0x0c), ones = _mm256_set1_epi16(1);
  __m256i acc[4];
  // Rows n0..n0+3 need not share a row group (a thread's range may start anywhere); block b of each row is
  // kTernaryGroupStride after block b - 1 either way.
  const uint8_t *w0 = a.w + ternary_block_offset(n0, 0, a.k_blocks),
                *w1 = a.w + ternary_block_offset(n0 + 1, 0, a.k_blocks),
                *w2 = a.w + ternary_block_offset(n0 + 2, 0, a.k_blocks),
                *w3 = a.w + ternary_block_offset(n0 + 3, 0, a.k_blocks);
  for (auto& v : acc) v = _mm256_setzero_si256();
  const int8_t* x = a.x;
  for (int64_t b0 = 0; b0 < a.k_blocks; b0 += kBlocksPerWiden) {
    __m256i a0 = _mm256_setzero_si256(), b0s = a0, a1 = a0, b1s = a0, a2 = a0, b2s = a0, a3 = a0, b3s = a0;
    const int64_t end = std::min(b0 + kBlocksPerWiden, a.k_blocks);
    for (int64_t b = b0; b < end; ++b) {
      __m256i v, t0, t1, t2;
      asm(BITNET_AVX2_ROW_HALF(w0, 0, a0, b0) BITNET_AVX2_ROW_HALF(w1, 0, a1, b1)
              BITNET_AVX2_ROW_HALF(w2, 0, a2, b2) BITNET_AVX2_ROW_HALF(w3, 0, a3, b3)
                  BITNET_AVX2_ROW_HALF(w0, 32, a0, b0) BITNET_AVX2_ROW_HALF(w1, 32, a1, b1)
                      BITNET_AVX2_ROW_HALF(w2, 32, a2, b2) BITNET_AVX2_ROW_HALF(w3, 32, a3, b3)
          : [a0] "+x"(a0), [b0] "+x"(b0s), [a1] "+x"(a1), [b1] "+x"(b1s), [a2] "+x"(a2), [b2] "+x"(b2s),
            [a3] "+x"(a3), [b3] "+x"(b3s), [v] "=&x"(v), [t0] "=&x"(t0), [t1] "=&x"(t1), [t2] "=&x"(t2)
          : [m0] "x"(m0), [m1] "x"(m1), [w0] "r"(w0), [w1] "r"(w1), [w2] "r"(w2), [w3] "r"(w3), [x] "r"(x)
          : "memory");  // it reads the 4 rows' block and the block's activations (too many operands to name them)
      w0 += kTernaryGroupStride, w1 += kTernaryGroupStride, w2 += kTernaryGroupStride, w3 += kTernaryGroupStride;
      x += kTernaryBlock;
    }
    auto widen = [&](__m256i acc32, __m256i sa, __m256i sb) {
      return _mm256_add_epi32(acc32, _mm256_madd_epi16(_mm256_add_epi16(sa, _mm256_srai_epi16(sb, 2)), ones));
    };
    acc[0] = widen(acc[0], a0, b0s), acc[1] = widen(acc[1], a1, b1s);
    acc[2] = widen(acc[2], a2, b2s), acc[3] = widen(acc[3], a3, b3s);
  }
  const __m128i dots = _mm_sub_epi32(hsum4_epi32(acc[0], acc[1], acc[2], acc[3]), _mm_set1_epi32(a.x_sum[0]));
  _mm_storeu_ps(a.y + n0, _mm_mul_ps(_mm_cvtepi32_ps(dots), _mm_set1_ps(a.scale[0])));
}
#undef BITNET_AVX2_ROW_HALF

// Several tokens: tiles of 2 rows x 4 tokens (2 for a remainder), a block per asm statement. Per 32 bytes of a
// row, each field is one shift (in place) and one mask, then four `vpmaddubsw` (activations read from memory by
// the instruction) and four 16-bit adds, one per token: 39 operations for 512 products, against 46 for 256 in the intrinsic 2 x 2
// tile, which GCC 12 compiled with about 50 spills and reloads per block. The eight 16-bit sums gain at most
// 8 x 512 = 4096 per block and widen once per kTileBlocksPerWiden = 7 blocks (< 2^15).
// Token t's activations: t = 0..2 at xa + t * xs (an index register scaled by 1 or 2), t = 3 at xb.
#define BITNET_AVX2_X0(H, F) #H "+" #F "(%[xa])"
#define BITNET_AVX2_X1(H, F) #H "+" #F "(%[xa],%[xs],1)"
#define BITNET_AVX2_X2(H, F) #H "+" #F "(%[xa],%[xs],2)"
#define BITNET_AVX2_X3(H, F) #H "+" #F "(%[xb])"
#define BITNET_AVX2_PRODUCT(X, S) "vpmaddubsw " X ", %[c], %[p]\n\tvpaddw %[p], %[" #S "], %[" #S "]\n\t"
// Field F (its activations at + F) of the row whose bytes are in P, shifted down to bits 0-1 before (SHIFT).
#define BITNET_AVX2_FIELD(SHIFT, P, H, F, S0, S1, S2, S3)                                   \
  SHIFT "vpand %[m], %[" #P "], %[c]\n\t" BITNET_AVX2_PRODUCT(BITNET_AVX2_X0(H, F), S0)    \
      BITNET_AVX2_PRODUCT(BITNET_AVX2_X1(H, F), S1) BITNET_AVX2_PRODUCT(BITNET_AVX2_X2(H, F), S2) \
          BITNET_AVX2_PRODUCT(BITNET_AVX2_X3(H, F), S3)
#define BITNET_AVX2_SHIFT(P) "vpsrlw $2, %[" #P "], %[" #P "]\n\t"
// The same for 2 tokens.
#define BITNET_AVX2_FIELD2(SHIFT, P, H, F, S0, S1)                                        \
  SHIFT "vpand %[m], %[" #P "], %[c]\n\t" BITNET_AVX2_PRODUCT(BITNET_AVX2_X0(H, F), S0) \
      BITNET_AVX2_PRODUCT(BITNET_AVX2_X1(H, F), S1)
#define BITNET_AVX2_TILE2_HALF(H)                                                                   \
  "vmovdqu " #H "(%[w0]), %[p0]\n\tvmovdqu " #H "(%[w1]), %[p1]\n\t"                                \
  BITNET_AVX2_FIELD2("", p0, H, 0, s00, s01) BITNET_AVX2_FIELD2("", p1, H, 0, s10, s11)             \
  BITNET_AVX2_FIELD2(BITNET_AVX2_SHIFT(p0), p0, H, 64, s00, s01)                                    \
  BITNET_AVX2_FIELD2(BITNET_AVX2_SHIFT(p1), p1, H, 64, s10, s11)                                    \
  BITNET_AVX2_FIELD2(BITNET_AVX2_SHIFT(p0), p0, H, 128, s00, s01)                                   \
  BITNET_AVX2_FIELD2(BITNET_AVX2_SHIFT(p1), p1, H, 128, s10, s11)                                   \
  BITNET_AVX2_FIELD2(BITNET_AVX2_SHIFT(p0), p0, H, 192, s00, s01)                                   \
  BITNET_AVX2_FIELD2(BITNET_AVX2_SHIFT(p1), p1, H, 192, s10, s11)
#define BITNET_AVX2_TILE_HALF(H)                                                                              \
  "vmovdqu " #H "(%[w0]), %[p0]\n\tvmovdqu " #H "(%[w1]), %[p1]\n\t"                                          \
  BITNET_AVX2_FIELD("", p0, H, 0, s00, s01, s02, s03) BITNET_AVX2_FIELD("", p1, H, 0, s10, s11, s12, s13)     \
  BITNET_AVX2_FIELD(BITNET_AVX2_SHIFT(p0), p0, H, 64, s00, s01, s02, s03)                                     \
  BITNET_AVX2_FIELD(BITNET_AVX2_SHIFT(p1), p1, H, 64, s10, s11, s12, s13)                                     \
  BITNET_AVX2_FIELD(BITNET_AVX2_SHIFT(p0), p0, H, 128, s00, s01, s02, s03)                                    \
  BITNET_AVX2_FIELD(BITNET_AVX2_SHIFT(p1), p1, H, 128, s10, s11, s12, s13)                                    \
  BITNET_AVX2_FIELD(BITNET_AVX2_SHIFT(p0), p0, H, 192, s00, s01, s02, s03)                                    \
  BITNET_AVX2_FIELD(BITNET_AVX2_SHIFT(p1), p1, H, 192, s10, s11, s12, s13)

constexpr int64_t kL1ActivationBytes = 24 << 10;  // gemm's token chunks

// T = 4 or 2 tokens.
template <int T>
void tile_2xT(const TernaryGemmArgs& a, int64_t n0, int64_t t0) {
  static_assert(T == 2 || T == 4);
  constexpr int64_t kTileBlocksPerWiden = 7;
  // The first token tile of a row group's first row pair prefetches the group kPrefetchGroupsAhead on.
  const bool prefetch = n0 % kTernaryRowGroup == 0 && t0 == 0;
  const uint8_t* group = a.w + ternary_block_offset(n0, 0, a.k_blocks);
  const int64_t ahead = kPrefetchGroupsAhead * a.k_blocks * kTernaryGroupStride;
  const __m256i m = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  __m256i acc[2][4];
  for (auto& row : acc)
    for (auto& v : row) v = _mm256_setzero_si256();
  const uint8_t* w0 = a.w + ternary_block_offset(n0, 0, a.k_blocks);
  const uint8_t* w1 = a.w + ternary_block_offset(n0 + 1, 0, a.k_blocks);
  const int8_t* xa = a.x + t0 * a.x_stride;
  const int8_t* xb = T == 4 ? xa + 3 * a.x_stride : xa;
  for (int64_t b0 = 0; b0 < a.k_blocks; b0 += kTileBlocksPerWiden) {
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00,
            s13 = s00;
    const int64_t end = std::min(b0 + kTileBlocksPerWiden, a.k_blocks);
    for (int64_t b = b0; b < end; ++b) {
      if (prefetch) prefetch_group_block(group, ahead + b * kTernaryGroupStride);
      __m256i p0, p1, c, p;
      // Each reads the two rows' block and the block's activations of the T tokens ("memory").
      if constexpr (T == 4) {
        asm(BITNET_AVX2_TILE_HALF(0) BITNET_AVX2_TILE_HALF(32)
            : [s00] "+x"(s00), [s01] "+x"(s01), [s02] "+x"(s02), [s03] "+x"(s03), [s10] "+x"(s10),
              [s11] "+x"(s11), [s12] "+x"(s12), [s13] "+x"(s13), [p0] "=&x"(p0), [p1] "=&x"(p1), [c] "=&x"(c),
              [p] "=&x"(p)
            : [m] "x"(m), [w0] "r"(w0), [w1] "r"(w1), [xa] "r"(xa), [xb] "r"(xb), [xs] "r"(a.x_stride)
            : "memory");
      } else {
        asm(BITNET_AVX2_TILE2_HALF(0) BITNET_AVX2_TILE2_HALF(32)
            : [s00] "+x"(s00), [s01] "+x"(s01), [s10] "+x"(s10), [s11] "+x"(s11), [p0] "=&x"(p0), [p1] "=&x"(p1),
              [c] "=&x"(c), [p] "=&x"(p)
            : [m] "x"(m), [w0] "r"(w0), [w1] "r"(w1), [xa] "r"(xa), [xs] "r"(a.x_stride)
            : "memory");
      }
      w0 += kTernaryGroupStride, w1 += kTernaryGroupStride;
      xa += kTernaryBlock, xb += kTernaryBlock;
    }
    const __m256i sums[2][4] = {{s00, s01, s02, s03}, {s10, s11, s12, s13}};
    for (int r = 0; r < 2; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(sums[r][t], ones));
  }
  alignas(16) int32_t offset[4] = {};
  alignas(16) float scale[4] = {};
  for (int t = 0; t < T; ++t) offset[t] = a.x_sum[t0 + t], scale[t] = a.scale[t0 + t];
  for (int r = 0; r < 2; ++r) {
    alignas(16) float y[4];
    const __m128i dots = _mm_sub_epi32(hsum4_epi32(acc[r][0], acc[r][1], acc[r][2], acc[r][3]),
                                       _mm_load_si128(reinterpret_cast<const __m128i*>(offset)));
    _mm_store_ps(y, _mm_mul_ps(_mm_cvtepi32_ps(dots), _mm_load_ps(scale)));
    for (int t = 0; t < T; ++t) a.y[(t0 + t) * a.y_stride + n0 + r] = y[t];
  }
}
#undef BITNET_AVX2_TILE2_HALF
#undef BITNET_AVX2_FIELD2
#undef BITNET_AVX2_TILE_HALF
#undef BITNET_AVX2_SHIFT
#undef BITNET_AVX2_FIELD
#undef BITNET_AVX2_PRODUCT
#undef BITNET_AVX2_X3
#undef BITNET_AVX2_X2
#undef BITNET_AVX2_X1
#undef BITNET_AVX2_X0

template <int R, int T>
void tile_tokens(const TernaryGemmArgs& a, int64_t n0, int64_t t0, int64_t tokens) {
  if constexpr (T > 0) {
    if (tokens == T) return tile<R, T>(a, n0, t0);
    return tile_tokens<R, T - 1>(a, n0, t0, tokens);
  }
}

// Tokens [t0, t1) of row(s) n0 (and n0 + 1).
template <int R>
void rows(const TernaryGemmArgs& a, int64_t n0, int64_t t0, int64_t t1) {
  constexpr int kT = 2;
  int64_t t = t0;
  if constexpr (R == 2) {
    for (; t + 4 <= t1; t += 4) tile_2xT<4>(a, n0, t);
    if (t + 2 <= t1) tile_2xT<2>(a, n0, t), t += 2;
  }
  for (; t + kT <= t1; t += kT) tile<R, kT>(a, n0, t);
  if (t < t1) tile_tokens<R, kT - 1>(a, n0, t, t1 - t);
}

void gemm(const TernaryGemmArgs& a) {
  int64_t n = a.row_begin;
  if (a.tokens == 1)
    for (; n + 4 <= a.row_end; n += 4) gemv_4rows(a, n);  // then the last 1-3 rows by the tiles
  // Many tokens (prefill) go a chunk at a time over all the call's rows, a chunk being the multiple of 4 tokens
  // whose activations fit 24 KiB of the 32 KiB L1 (at least 4): a tile reads 4 x 256 activation bytes per block
  // and only 2 x 64 weight bytes, so the activations are the stream to keep close. All 512 tokens of a prompt
  // (1.3 MB at 2560 columns) came from L3 for every row pair; 16 tokens at a time from L2 took 0.6 of that time.
  const int64_t chunk = std::max<int64_t>(4, kL1ActivationBytes / (a.k_blocks * kTernaryBlock) / 4 * 4);
  for (int64_t t0 = 0; t0 < a.tokens; t0 += chunk) {
    const int64_t t1 = std::min(t0 + chunk, a.tokens);
    int64_t r = n;
    for (; r + 2 <= a.row_end; r += 2) rows<2>(a, r, t0, t1);
    if (r < a.row_end) rows<1>(a, r, t0, t1);
  }
}

}  // namespace

extern const TernaryKernels kTernaryKernels;
const TernaryKernels kTernaryKernels = {gemm, gemm_base3, ref::encode_base3, false};

}  // namespace bitnet::kernels::avx2
