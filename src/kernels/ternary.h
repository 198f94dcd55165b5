#pragma once
// Internal: the ternary x int8 matrix-multiply kernel family.
//
// Weight layout ("native", repacked once at load time; see quant/ternary_matrix.cpp):
//   rows of K_pad = k_blocks * 256 weights; each 256-weight block is 64 bytes; byte j (0..63) of a block holds
//   the 2-bit codes (w + 1, so {0, 1, 2}) of elements j, j+64, j+128, j+192 at bits 0-1, 2-3, 4-5, 6-7.
//   So one 64-byte load, shifted by 0/2/4/6 and masked with 3, gives the codes of 64 consecutive weights,
//   lined up with 64 consecutive int8 activations: `vpdpbusd` (u8 code x s8 activation) needs no shuffle.
//   Rows are interleaved in groups of 4: block b of rows 4g..4g+3 are 4 consecutive 64-byte blocks, so a tile
//   of 4 rows reads one sequential stream (the hardware prefetcher follows one long stream, not 4 short
//   ones). Padding weights (k >= K, and the rows that fill the last group) have code 1 (zero).
// Activations: int8 rows of at least K_pad bytes, zero beyond K, with their per-token sum (the offset trick:
//   sum(code * x) - sum(x) = sum(w * x), exact in int32: |sum| <= 2 * 128 * K_pad < 2^31 for K_pad < 2^22).
// Both layouts take the same activations and give the same results.
// Output: y[t][n] = float(sum_k w[n][k] * x[t][k]) * scale[t]  (scale: activation dequant x weight scale,
//   computed once by the caller, so every variant rounds identically and results agree bit for bit).
#include <cstdint>

#include "kernels/dispatch.h"

namespace bitnet::kernels {

inline constexpr int64_t kTernaryBlock = 256;       // weights per block
inline constexpr int64_t kTernaryBlockBytes = 64;   // bytes per block (2 bits per weight)
inline constexpr int64_t kMaxTernaryK = int64_t{1} << 22;
inline constexpr int64_t kTernaryRowGroup = 4;
inline constexpr int64_t kTernaryGroupStride = kTernaryRowGroup * kTernaryBlockBytes;  // bytes from block b to b+1

// Byte offset of block b of row n.
inline int64_t ternary_block_offset(int64_t n, int64_t b, int64_t k_blocks) {
  return (((n / kTernaryRowGroup) * k_blocks + b) * kTernaryRowGroup + n % kTernaryRowGroup) * kTernaryBlockBytes;
}
// Bytes of a matrix of `rows` rows (whole row groups).
inline int64_t ternary_matrix_bytes(int64_t rows, int64_t k_blocks) {
  return (rows + kTernaryRowGroup - 1) / kTernaryRowGroup * kTernaryRowGroup * k_blocks * kTernaryBlockBytes;
}

struct TernaryGemmArgs {
  const uint8_t* w;       // native layout (ternary_block_offset)
  int64_t k_blocks;       // K_pad / 256
  const int8_t* x;        // tokens x x_stride, zero-padded to K_pad
  int64_t x_stride;       // bytes between tokens (>= K_pad)
  const int32_t* x_sum;   // per token: sum of its int8 activations
  const float* scale;     // per token: output scale
  float* y;               // tokens x y_stride
  int64_t y_stride;       // floats between tokens
  int64_t row_begin;      // the rows [row_begin, row_end) this call computes
  int64_t row_end;
  int64_t tokens;
};

struct TernaryKernels {
  void (*gemm)(const TernaryGemmArgs& args);        // w in the 2-bit layout above
  void (*gemm_base3)(const TernaryGemmArgs& args);  // w in the base-3 layout (kernels/ternary_base3.h)
  // Packing into the base-3 layout: bytes[i] = kBase3.encode[tuples[i]] for i < n, each tuple at most 242.
  void (*encode_base3)(const uint8_t* tuples, uint8_t* bytes, int64_t n);
  // Whether gemm_base3 decodes one token at least as fast as gemm from DRAM, so that the base-3 layout's fewer
  // bytes make decode faster: measured true for AVX-512 VBMI (two vpermi2b per 64 bytes). AVX2 decodes half as
  // fast (tg32 17 against 35 t/s on the 2B4T shape, 2 threads): each 128-entry lookup is 8 vpshufb and a blend
  // tree. NEON's tbl + tbx decode has not been timed on Arm hardware. Where false, `--packing auto` keeps 2 bits.
  bool base3_decodes_fast;
};

const Family<TernaryKernels>& ternary_family();

}  // namespace bitnet::kernels
