// AVX-512 VBMI + VNNI kernel of the base-3 layout (kernels/ternary_base3.h). Each 64-byte load of weights is
// decoded by two `vpermi2b` lookups into the five planes of 64 codes. Decode (one token) masks the fields in
// place into three accumulators per row (scales 1, 4 and 32) folded once per row, as the 2-bit GEMV does; 2 or 3
// tokens use tiles of R rows x T tokens that shift each plane down once and feed it to T `vpdpbusd`; 4 tokens or
// more transcode each row group into the 2-bit layout once and run the 2-bit kernel (gemm_base3_transcoded).
// GCC 12 warns about its own _mm512_undefined_* inside the shuffle intrinsics (a false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/ternary_base3.h"
#include "kernels/x86_hsum.h"
#include "kernels/x86_prefetch.h"
#include "kernels/x86_vnni.h"

namespace bitnet::kernels::avx512 {

namespace {

// The byte code's two 128-entry lookups, two registers each.
struct Lookups {
  __m512i lo0, lo1, hi0, hi1;
  Lookups()
      : lo0(_mm512_loadu_si512(kBase3.lo.data())), lo1(_mm512_loadu_si512(kBase3.lo.data() + 64)),
        hi0(_mm512_loadu_si512(kBase3.hi.data())), hi1(_mm512_loadu_si512(kBase3.hi.data() + 64)) {}
  // A (c0 | c1 << 2 | p << 5) and B (c2 | c3 << 2 | q << 5) of 64 bytes. vpermi2b ignores each index byte's
  // top bit, so the 16-bit shift that brings b1..b7 down needs no mask.
  __m512i a(__m512i v) const { return _mm512_permutex2var_epi8(lo0, v, lo1); }
  __m512i b(__m512i v) const { return _mm512_permutex2var_epi8(hi0, _mm512_srli_epi16(v, 1), hi1); }
  // The five planes of 64 bytes, each shifted down to codes 0..2 (the tiles and the transcode).
  void planes(__m512i v, __m512i p[kBase3Blocks]) const {
    const __m512i m3 = _mm512_set1_epi8(3), A = a(v), B = b(v);
    p[0] = _mm512_and_si512(A, m3);
    p[1] = _mm512_and_si512(_mm512_srli_epi16(A, 2), m3);
    p[2] = _mm512_and_si512(B, m3);
    p[3] = _mm512_and_si512(_mm512_srli_epi16(B, 2), m3);
    p[4] = _mm512_and_si512(_mm512_srli_epi16(_mm512_add_epi8(A, B), 5), m3);
  }
};

// One token, 4 rows. Accumulators per row: u (planes 0 and 2, scale 1), f (planes 1 and 3, scale 4) and s
// (plane 4, scale 32). Every lane of f is a multiple of 4 and of s a multiple of 32, so the fold is exact; a lane
// of s is at most 4 x 64 x 128 per vpdpbusd, K / 320 of them: below 2^31 up to kMaxTernaryK.
void gemv(const TernaryGemmArgs& a, int64_t n0, const Lookups& lut) {
  const __m512i m3 = _mm512_set1_epi8(0x03), m12 = _mm512_set1_epi8(0x0c), m96 = _mm512_set1_epi8(0x60);
  __m512i u0 = _mm512_setzero_si512(), f0 = u0, s0 = u0, u1 = u0, f1 = u0, s1 = u0, u2 = u0, f2 = u0, s2 = u0, u3 = u0,
          f3 = u0, s3 = u0;
  // Rows n0..n0+3 need not share a row group (a thread's range may start anywhere).
  const uint8_t* w[4];
  for (int r = 0; r < 4; ++r) w[r] = a.w + base3_super_offset(n0 + r, 0, a.k_blocks);
  const int64_t supers = base3_superblocks(a.k_blocks);
  for (int64_t sb = 0; sb < supers; ++sb) {
    for (int64_t q = 0; q < 4; ++q) {
      const int8_t* xp = a.x + sb * kBase3SuperWeights + 64 * q;
      const int64_t at = sb * kBase3GroupSuperStride + q * kBase3PieceStride;
      const __m512i x0 = _mm512_loadu_si512(xp), x1 = _mm512_loadu_si512(xp + 256), x2 = _mm512_loadu_si512(xp + 512),
                    x3 = _mm512_loadu_si512(xp + 768), x4 = _mm512_loadu_si512(xp + 1024);
#define BITNET_ROW(r, U, F, S)                                              \
  {                                                                         \
    const __m512i v = _mm512_loadu_si512(w[r] + at);                        \
    const __m512i A = lut.a(v), B = lut.b(v);                               \
    BITNET_DPBUSD(U, _mm512_and_si512(A, m3), x0);                          \
    BITNET_DPBUSD(F, _mm512_and_si512(A, m12), x1);                         \
    BITNET_DPBUSD(U, _mm512_and_si512(B, m3), x2);                          \
    BITNET_DPBUSD(F, _mm512_and_si512(B, m12), x3);                         \
    BITNET_DPBUSD(S, _mm512_and_si512(_mm512_add_epi8(A, B), m96), x4);     \
  }
      BITNET_ROW(0, u0, f0, s0)
      BITNET_ROW(1, u1, f1, s1)
      BITNET_ROW(2, u2, f2, s2)
      BITNET_ROW(3, u3, f3, s3)
#undef BITNET_ROW
    }
  }
  // The 2-bit tail blocks: fields 0 and 1 masked in place (scales 1 and 4), fields 2 and 3 shifted down.
  for (int64_t t = 0; t < base3_tail_blocks(a.k_blocks); ++t) {
    const int8_t* xp = a.x + supers * kBase3SuperWeights + t * kTernaryBlock;
    const __m512i x0 = _mm512_loadu_si512(xp), x1 = _mm512_loadu_si512(xp + 64), x2 = _mm512_loadu_si512(xp + 128),
                  x3 = _mm512_loadu_si512(xp + 192);
#define BITNET_TAIL(r, U, F)                                                                      \
  {                                                                                               \
    const __m512i v = _mm512_loadu_si512(a.w + base3_tail_offset(n0 + r, t, a.k_blocks));         \
    BITNET_DPBUSD(U, _mm512_and_si512(v, m3), x0);                                                \
    BITNET_DPBUSD(F, _mm512_and_si512(v, m12), x1);                                               \
    BITNET_DPBUSD(U, _mm512_and_si512(_mm512_srli_epi16(v, 4), m3), x2);                          \
    BITNET_DPBUSD(U, _mm512_and_si512(_mm512_srli_epi16(v, 6), m3), x3);                          \
  }
    BITNET_TAIL(0, u0, f0)
    BITNET_TAIL(1, u1, f1)
    BITNET_TAIL(2, u2, f2)
    BITNET_TAIL(3, u3, f3)
#undef BITNET_TAIL
  }
  auto fold = [](__m512i u, __m512i f, __m512i s) {
    return _mm512_add_epi32(u, _mm512_add_epi32(_mm512_srai_epi32(f, 2), _mm512_srai_epi32(s, 5)));
  };
  const __m128i dots =
      _mm_sub_epi32(hsum4_epi32(fold(u0, f0, s0), fold(u1, f1, s1), fold(u2, f2, s2), fold(u3, f3, s3)),
                    _mm_set1_epi32(a.x_sum[0]));
  _mm_storeu_ps(a.y + n0, _mm_mul_ps(_mm_cvtepi32_ps(dots), _mm_set1_ps(a.scale[0])));
}

// R rows x T tokens: each row's 64 bytes are decoded once, each plane shifted down to codes 0..2 and multiplied
// with the T tokens' activations (read from L1 as vpdpbusd's memory operand).
template <int R, int T>
void tile(const TernaryGemmArgs& a, int64_t n0, int64_t t0, const Lookups& lut) {
  const __m512i m3 = _mm512_set1_epi8(3);
  // As the 2-bit tiles (x86_prefetch.h): the first token tile of a row group prefetches the group
  // kPrefetchGroupsAhead on.
  const bool prefetch = R == kTernaryRowGroup && t0 == 0 && a.tokens > 1;
  const uint8_t* group = a.w + base3_super_offset(n0, 0, a.k_blocks);
  const int64_t ahead = kPrefetchGroupsAhead * base3_group_bytes(a.k_blocks);
  __m512i acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_si512();
  const int8_t* x = a.x + t0 * a.x_stride;
  auto feed = [&](int r, __m512i codes, int64_t k) {
    for (int t = 0; t < T; ++t)
      acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], codes, _mm512_loadu_si512(x + t * a.x_stride + k));
  };
  const int64_t supers = base3_superblocks(a.k_blocks);
  for (int64_t sb = 0; sb < supers; ++sb) {
    for (int64_t q = 0; q < 4; ++q) {
      const int64_t at = sb * kBase3GroupSuperStride + q * kBase3PieceStride, k = sb * kBase3SuperWeights + 64 * q;
      if (prefetch) prefetch_group_block(group, ahead + at);
      for (int r = 0; r < R; ++r) {
        __m512i p[kBase3Blocks];
        lut.planes(_mm512_loadu_si512(a.w + base3_super_offset(n0 + r, 0, a.k_blocks) + at), p);
        for (int i = 0; i < kBase3Blocks; ++i) feed(r, p[i], k + i * kTernaryBlock);
      }
    }
  }
  for (int64_t tb = 0; tb < base3_tail_blocks(a.k_blocks); ++tb) {
    const int64_t k = supers * kBase3SuperWeights + tb * kTernaryBlock;
    for (int r = 0; r < R; ++r) {
      const __m512i v = _mm512_loadu_si512(a.w + base3_tail_offset(n0 + r, tb, a.k_blocks));
      for (int f = 0; f < 4; ++f) feed(r, _mm512_and_si512(_mm512_srli_epi16(v, 2 * f), m3), k + 64 * f);
    }
  }
  for (int t = 0; t < T; ++t) {
    float* y = a.y + (t0 + t) * a.y_stride + n0;
    const int32_t offset = a.x_sum[t0 + t];
    const float scale = a.scale[t0 + t];
    if constexpr (R == 4) {
      const __m128i dots =
          _mm_sub_epi32(hsum4_epi32(acc[0][t], acc[1][t], acc[2][t], acc[3][t]), _mm_set1_epi32(offset));
      _mm_storeu_ps(y, _mm_mul_ps(_mm_cvtepi32_ps(dots), _mm_set1_ps(scale)));
    } else {
      for (int r = 0; r < R; ++r) y[r] = static_cast<float>(hsum_epi32(acc[r][t]) - offset) * scale;
    }
  }
}

// The superblocks of the 4 rows of the group at `src` in the 2-bit layout (gemm_base3_transcoded): piece q of
// superblock s holds, in its five planes, field q of 2-bit blocks 5s .. 5s+4.
void transcode_group(const uint8_t* src, int64_t k_blocks, uint8_t* out, const Lookups& lut) {
  const int64_t supers = base3_superblocks(k_blocks);
  // As the tiles do (x86_prefetch.h): the same superblock of the group kPrefetchGroupsAhead on, into L2.
  const int64_t ahead = kPrefetchGroupsAhead * base3_group_bytes(k_blocks);
  for (int64_t sb = 0; sb < supers; ++sb) {
    for (int64_t r = 0; r < kTernaryRowGroup; ++r) {
      prefetch_group_block(src, ahead + sb * kBase3GroupSuperStride + r * kPrefetchBlockBytes);
      __m512i blk[kBase3Blocks];
      for (auto& b : blk) b = _mm512_setzero_si512();
      for (int q = 0; q < 4; ++q) {
        __m512i p[kBase3Blocks];
        lut.planes(_mm512_loadu_si512(src + base3_super_offset(r, sb, k_blocks) + q * kBase3PieceStride), p);
        // Codes are at most 2, so code << 6 stays inside its byte of the 16-bit lane.
        for (int i = 0; i < kBase3Blocks; ++i) blk[i] = _mm512_or_si512(blk[i], _mm512_slli_epi16(p[i], 2 * q));
      }
      for (int i = 0; i < kBase3Blocks; ++i)
        _mm512_storeu_si512(out + ternary_block_offset(r, kBase3Blocks * sb + i, k_blocks), blk[i]);
    }
  }
  // And the tail blocks (gemm_base3_transcoded copies them): 9% of down's bytes, 2B4T's batch of 8 took 523-567 us
  // on it without this prefetch.
  for (int64_t t = 0; t < base3_tail_blocks(k_blocks); ++t)
    prefetch_group_block(src, ahead + base3_tail_offset(0, t, k_blocks));
}

// Token remainders 1..T-1 of a tile of R rows.
template <int R, int T>
void tile_tokens(const TernaryGemmArgs& a, int64_t n0, int64_t t0, int64_t tokens, const Lookups& lut) {
  if constexpr (T > 0) {
    if (tokens == T) return tile<R, T>(a, n0, t0, lut);
    return tile_tokens<R, T - 1>(a, n0, t0, tokens, lut);
  }
}

}  // namespace

extern const TernaryKernels kTernaryKernels;  // the 2-bit kernels (ternary_avx512.cpp)

// The 243-entry table as four registers (entries 243-255 are 0, never looked up): one vpermi2b for the tuples
// below 128, one for the rest, and bit 7 of each tuple picks between them. 64 bytes in 4 instructions, where the
// table loop takes a load and a store per byte.
void encode_base3(const uint8_t* tuples, uint8_t* bytes, int64_t n) {
  alignas(64) static constexpr auto table = [] {
    std::array<uint8_t, 256> t{};
    for (size_t i = 0; i < kBase3.encode.size(); ++i) t[i] = kBase3.encode[i];
    return t;
  }();
  const __m512i t0 = _mm512_load_si512(table.data()), t1 = _mm512_load_si512(table.data() + 64),
                t2 = _mm512_load_si512(table.data() + 128), t3 = _mm512_load_si512(table.data() + 192);
  for (int64_t i = 0; i < n; i += 64) {
    const __mmask64 live = n - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (n - i)) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(live, tuples + i);
    const __m512i low = _mm512_permutex2var_epi8(t0, v, t1), high = _mm512_permutex2var_epi8(t2, v, t3);
    _mm512_mask_storeu_epi8(bytes + i, live, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), low, high));
  }
}

void gemm_base3(const TernaryGemmArgs& a) {
  const Lookups lut;
  if (a.tokens >= kBase3TranscodeTokens) {
    return gemm_base3_transcoded(
        a, [&](const uint8_t* src, int64_t k_blocks, uint8_t* out) { transcode_group(src, k_blocks, out, lut); },
        kTernaryKernels.gemm);
  }
  int64_t n = a.row_begin;
  if (a.tokens == 1)
    for (; n + 4 <= a.row_end; n += 4) gemv(a, n, lut);  // then the last 1-3 rows by the tiles
  for (; n + 4 <= a.row_end; n += 4) tile_tokens<4, kBase3TranscodeTokens - 1>(a, n, 0, a.tokens, lut);
  switch (a.row_end - n) {
    case 3: tile_tokens<3, kBase3TranscodeTokens - 1>(a, n, 0, a.tokens, lut); break;
    case 2: tile_tokens<2, kBase3TranscodeTokens - 1>(a, n, 0, a.tokens, lut); break;
    case 1: tile_tokens<1, kBase3TranscodeTokens - 1>(a, n, 0, a.tokens, lut); break;
    default: break;
  }
}

}  // namespace bitnet::kernels::avx512
