#pragma once
// Internal: the base-3 ternary layout ("base3", 1.6 bits per weight) and its byte code.
//
// Five weights per byte. A row of K_pad = k_blocks * 256 weights (the same activations as the 2-bit layout) is
// k_blocks / 5 superblocks of 1280 weights in 256 bytes, then the k_blocks % 5 blocks left over in the 2-bit
// layout (kernels/ternary.h's 64-byte blocks, at most 4). Byte j (0..255) of superblock s holds the codes
// (w + 1) of elements 1280 s + j + 256 i, i = 0..4, so one 64-byte load decodes into five planes of 64 codes,
// each lined up with 64 consecutive activations, as the 2-bit layout's four fields are.
// Rows are interleaved in groups of 4 as in the 2-bit layout, 64 bytes at a time: superblock s of rows 4g..4g+3 is
// 1024 bytes, its piece q (bytes 64q..64q+63) of row 4g+r at 256 q + 64 r, so a tile of 4 rows reads one
// sequential stream (laid out by row, 256 bytes each, the stream jumped by 256 bytes from load to load, and the
// GEMV read about 25% fewer bytes per second from DRAM). Then each tail block of the 4 rows is 4 consecutive
// 64-byte blocks. Padding weights are 0.
//
// The byte code is made for AVX-512 VBMI's 128-entry byte lookup (vpermi2b), which reads the low 7 bits of each
// index byte. Byte v = b0 | m << 1 | b7 << 7 (m: 6 bits) is decoded with two such lookups:
//   A = kBase3.lo[v & 127] = c0 | c1 << 2 | p << 5      (from b0 and m)
//   B = kBase3.hi[v >> 1]  = c2 | c3 << 2 | q << 5      (from m and b7)
// and the fifth code is c4 = p + q. So the five planes are A & 3, A & 12 (x 4), B & 3, B & 12 (x 4) and
// (A + B) & 0x60 (x 32): one load, one shift, two lookups, one add, five `and` per 320 weights, with the fields
// masked in place and scaled back once per row (no field sum crosses bit 5: c0 + 4 c1 + c2 + 4 c3 <= 20).
//
// Why such a code exists: for each m, (c0, c1) takes 2 values (b0) and (c2, c3) 2 values (b7), so each m covers
// a 2 x 2 "rectangle" of the 9 x 9 grid of ((c0, c1), (c2, c3)) pairs, with c4 = p(b0) + q(b7) at its corners.
// Three m's with (p, q) = ((0,1), (0,1)), ((0,1), (1,0)) and ((2,0), (0,0)) give each corner of one rectangle
// c4 = 0, 1 and 2. The 72 off-diagonal cells of the grid split into 18 disjoint rectangles (a decomposition of
// K(9,9) minus a perfect matching into 4-cycles, kBase3Rectangles, found by a short search), 54 m's; each of the
// 9 diagonal cells takes one m on its own (p, q in {0, 1}: c4 = 0, 1, 1, 2). 63 of the 64 m's, 252 of the 256
// bytes: every one of the 243 code tuples has a byte (checked at compile time below).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/ternary.h"

namespace bitnet::kernels {

inline constexpr int64_t kBase3Blocks = 5;          // 256-weight blocks per superblock
inline constexpr int64_t kBase3SuperWeights = kBase3Blocks * kTernaryBlock;  // 1280
inline constexpr int64_t kBase3SuperBytes = 256;
inline constexpr int64_t kBase3GroupSuperStride = kTernaryRowGroup * kBase3SuperBytes;  // superblock s -> s+1
inline constexpr int64_t kBase3PieceStride = kTernaryRowGroup * 64;  // a row's piece q -> q+1

inline int64_t base3_superblocks(int64_t k_blocks) { return k_blocks / kBase3Blocks; }
inline int64_t base3_tail_blocks(int64_t k_blocks) { return k_blocks % kBase3Blocks; }
// Bytes of one row group (4 rows).
inline int64_t base3_group_bytes(int64_t k_blocks) {
  return kTernaryRowGroup *
         (base3_superblocks(k_blocks) * kBase3SuperBytes + base3_tail_blocks(k_blocks) * kTernaryBlockBytes);
}
// Byte offset of superblock s of row n (its piece 0; piece q is q * kBase3PieceStride further).
inline int64_t base3_super_offset(int64_t n, int64_t s, int64_t k_blocks) {
  return n / kTernaryRowGroup * base3_group_bytes(k_blocks) + s * kBase3GroupSuperStride + n % kTernaryRowGroup * 64;
}
// Byte offset of byte j (0..255) of superblock s of row n.
inline int64_t base3_byte_offset(int64_t n, int64_t s, int64_t j, int64_t k_blocks) {
  return base3_super_offset(n, s, k_blocks) + j / 64 * kBase3PieceStride + j % 64;
}
// Byte offset of tail block t (0 .. tail_blocks - 1, block 5 * superblocks + t of the row) of row n.
inline int64_t base3_tail_offset(int64_t n, int64_t t, int64_t k_blocks) {
  return n / kTernaryRowGroup * base3_group_bytes(k_blocks) + base3_superblocks(k_blocks) * kBase3GroupSuperStride +
         t * kTernaryGroupStride + n % kTernaryRowGroup * kTernaryBlockBytes;
}
// Bytes of a matrix of `rows` rows (whole row groups).
inline int64_t base3_matrix_bytes(int64_t rows, int64_t k_blocks) {
  return (rows + kTernaryRowGroup - 1) / kTernaryRowGroup * base3_group_bytes(k_blocks);
}

// The 18 rectangles (rows a1, a2; columns b1, b2) of the grid of pair indices a = c0 + 3 c1, b = c2 + 3 c3.
inline constexpr int kBase3Rectangles[18][4] = {
    {0, 2, 1, 3}, {0, 1, 2, 4}, {0, 1, 5, 6}, {0, 1, 7, 8}, {1, 4, 0, 3}, {2, 3, 0, 4},
    {2, 3, 5, 6}, {2, 3, 7, 8}, {3, 4, 1, 2}, {4, 6, 5, 7}, {4, 5, 6, 8}, {5, 6, 0, 1},
    {5, 6, 2, 3}, {5, 8, 4, 7}, {6, 7, 4, 8}, {7, 8, 0, 1}, {7, 8, 2, 3}, {7, 8, 5, 6}};

struct Base3Tables {
  std::array<uint8_t, 128> lo{}, hi{};  // the two lookups (see above)
  std::array<uint8_t, 243> encode{};    // code tuple c0 + 3 c1 + 9 c2 + 27 c3 + 81 c4 -> byte
  bool complete = false;                // every tuple has a byte
};

// The five codes of byte v.
constexpr std::array<int, 5> base3_decode(const Base3Tables& t, unsigned v) {
  const unsigned a = t.lo[v & 127], b = t.hi[v >> 1];
  return {static_cast<int>(a & 3), static_cast<int>((a >> 2) & 3), static_cast<int>(b & 3),
          static_cast<int>((b >> 2) & 3), static_cast<int>((a >> 5) + (b >> 5))};
}

constexpr Base3Tables make_base3_tables() {
  Base3Tables t;
  int m = 0;
  // One m: rows a[b0], columns b[b7], c4 = p[b0] + q[b7].
  auto put = [&](const int a[2], const int b[2], const int p[2], const int q[2]) {
    for (int bit = 0; bit < 2; ++bit) {
      t.lo[static_cast<size_t>(bit + 2 * m)] = static_cast<uint8_t>(a[bit] % 3 | a[bit] / 3 << 2 | p[bit] << 5);
      t.hi[static_cast<size_t>(m + 64 * bit)] = static_cast<uint8_t>(b[bit] % 3 | b[bit] / 3 << 2 | q[bit] << 5);
    }
    ++m;
  };
  const int p3[3][2] = {{0, 1}, {0, 1}, {2, 0}}, q3[3][2] = {{0, 1}, {1, 0}, {0, 0}}, one[2] = {0, 1};
  for (const auto& r : kBase3Rectangles) {
    const int a[2] = {r[0], r[1]}, b[2] = {r[2], r[3]};
    for (int k = 0; k < 3; ++k) put(a, b, p3[k], q3[k]);
  }
  for (int d = 0; d < 9; ++d) {
    const int a[2] = {d, d};
    put(a, a, one, one);
  }
  bool seen[243] = {};
  for (unsigned v = 0; v < 256; ++v) {
    const auto c = base3_decode(t, v);
    if (c[4] > 2 || (v >> 1 & 63) >= static_cast<unsigned>(m)) continue;  // an unused m, or c4 = 3
    const int tuple = c[0] + 3 * c[1] + 9 * c[2] + 27 * c[3] + 81 * c[4];
    if (!seen[tuple]) t.encode[static_cast<size_t>(tuple)] = static_cast<uint8_t>(v);
    seen[tuple] = true;
  }
  t.complete = true;
  for (bool s : seen) t.complete = t.complete && s;
  return t;
}

inline constexpr Base3Tables kBase3 = make_base3_tables();
static_assert(kBase3.complete, "the base-3 byte code must cover all 243 code tuples");

// From this many tokens on, the kernels transcode (below). On 2B4T's gate/up and down from DRAM (2 threads,
// TernaryBatch), 4 tokens took 298 us transcoded against 348-378 decoded per tile; 2 tokens 218-236 against 155-195.
inline constexpr int kBase3TranscodeTokens = 4;

// Several tokens (prefill, batched decode): each row group is transcoded once into the 2-bit layout, into a buffer
// of one group's 2-bit rows (K bytes, kept by the thread: allocated on its first such call), and multiplied by the
// 2-bit kernel, so the decode costs once per call instead of once per token tile. `transcode(group, k_blocks, out)`
// writes the superblocks of the 4 rows of the group at `group` as blocks 0 .. 5 * superblocks - 1 of a 4-row matrix
// in the 2-bit layout (the tail blocks, 2-bit already, are copied here); `gemm_2bit` is the same instruction set's
// 2-bit kernel. `static`: each instruction set's file gets its own copy (see x86_hsum.h).
template <typename Transcode>
static void gemm_base3_transcoded(const TernaryGemmArgs& a, Transcode transcode,
                                  void (*gemm_2bit)(const TernaryGemmArgs&)) {
  thread_local std::vector<uint8_t> group_2bit;
  const auto group_bytes = static_cast<size_t>(ternary_matrix_bytes(kTernaryRowGroup, a.k_blocks));
  if (group_2bit.size() < group_bytes) group_2bit.resize(group_bytes);
  const int64_t first_tail = kBase3Blocks * base3_superblocks(a.k_blocks);
  for (int64_t g0 = a.row_begin / kTernaryRowGroup * kTernaryRowGroup; g0 < a.row_end; g0 += kTernaryRowGroup) {
    const uint8_t* group = a.w + base3_super_offset(g0, 0, a.k_blocks);
    transcode(group, a.k_blocks, group_2bit.data());
    for (int64_t t = 0; t < base3_tail_blocks(a.k_blocks); ++t)
      for (int64_t r = 0; r < kTernaryRowGroup; ++r)
        std::memcpy(group_2bit.data() + ternary_block_offset(r, first_tail + t, a.k_blocks),
                    group + base3_tail_offset(r, t, a.k_blocks), kTernaryBlockBytes);
    TernaryGemmArgs part = a;
    part.w = group_2bit.data();
    part.y = a.y + g0;
    part.row_begin = std::max(a.row_begin, g0) - g0;
    part.row_end = std::min(a.row_end, g0 + kTernaryRowGroup) - g0;
    gemm_2bit(part);
  }
}

// The base-3 kernels of each instruction set (TernaryKernels::gemm_base3, encode_base3). Only AVX-512 VBMI has
// its own encode (a 243-entry byte lookup is two vpermi2b); the others use the reference's table loop.
namespace ref {
void gemm_base3(const TernaryGemmArgs& a);
void encode_base3(const uint8_t* tuples, uint8_t* bytes, int64_t n);
}  // namespace ref
#if defined(__x86_64__)
namespace avx2 { void gemm_base3(const TernaryGemmArgs& a); }
namespace avx512 {  // both need AVX-512 VBMI (and the GEMM VNNI)
void gemm_base3(const TernaryGemmArgs& a);
void encode_base3(const uint8_t* tuples, uint8_t* bytes, int64_t n);
}  // namespace avx512
#endif
#if defined(__aarch64__)
namespace neon { void gemm_base3(const TernaryGemmArgs& a); }
#endif

}  // namespace bitnet::kernels
