#pragma once
// Internal: dense kernels for the output head (and any full-precision layer): int8 x int8, int4 x int8 and
// f16 x f32.
//
// int8 weights are stored offset by +128 as u8 (zero weight = 128 in the padding), so that `vpdpbusd`
// (u8 x s8) applies; the offset is removed with the activation sum: sum((w + 128) x) - 128 sum(x) = sum(w x),
// exact in int32 for k_pad <= 2^17. Output: float(dot) * scale[t] * row_scale[n].
// Layout: 64-byte blocks of 64 consecutive weights; rows interleaved in groups of 4 as in the ternary layout
// (block b of rows 4g..4g+3 are 4 consecutive blocks), so a 4-row tile reads one sequential stream instead
// of 4 short ones. The matrix holds whole row groups (the rows that fill the last group are zero weights).
// int4 weights (the "int4" head): groups of 32 weights share an f16 scale d, value = d * (u - 8) for a nibble
// u in [0, 15]. Layout: a row is cut into super-blocks of 128 weights held in 64 bytes, byte j holding weight
// j in its low nibble and weight j + 64 in its high one (one mask or one shift gives 64 consecutive weights);
// the super-blocks of rows 4g..4g+3 are 4 consecutive 64-byte blocks, as in the int8 layout. Scales are a
// separate array in the same order: per row group and super-block, 16 halves, row-major [row][group of 32].
// Padding weights are u = 8 (zero) with scale 0. Per row and token, each group's exact int32 dot
// sum((u - 8) x) is scaled by d and summed in float; the variants sum in different orders, so they agree
// within a tolerance, not bit for bit.
// f16 weights are rows of k halves (k_stride apart); y = sum_k w * x accumulated in f32 (variants differ in
// summation order, so they agree within a tolerance, not bit for bit).
#include <cstdint>

#include "kernels/dispatch.h"

namespace bitnet::kernels {

inline constexpr int64_t kMaxDenseI8K = int64_t{1} << 17;
inline constexpr int64_t kDenseI8RowGroup = 4;
inline constexpr int64_t kDenseI8Block = 64;  // weights (= bytes) per block
inline constexpr int64_t kDenseI8GroupStride = kDenseI8RowGroup * kDenseI8Block;  // bytes from block b to b+1

// Byte offset of weight k of row n in a matrix with rows of k_pad weights.
inline int64_t dense_i8_offset(int64_t n, int64_t k, int64_t k_pad) {
  return ((n / kDenseI8RowGroup) * (k_pad / kDenseI8Block) + k / kDenseI8Block) * kDenseI8GroupStride +
         (n % kDenseI8RowGroup) * kDenseI8Block + k % kDenseI8Block;
}

struct DenseI8Args {
  const uint8_t* w;        // value + 128, in the interleaved layout (dense_i8_offset)
  int64_t k_pad;           // multiple of 64
  const float* row_scale;  // per row
  const int8_t* x;         // tokens x x_stride, zero-padded to k_pad
  int64_t x_stride;
  const int32_t* x_sum;
  const float* scale;      // per token
  float* y;
  int64_t y_stride;
  int64_t row_begin, row_end, tokens;
};

inline constexpr int64_t kDenseI4Group = 32;        // weights per scale
inline constexpr int64_t kDenseI4SuperBlock = 128;  // weights per 64-byte block of one row
inline constexpr int64_t kDenseI4GroupStride = kDenseI8RowGroup * kDenseI4SuperBlock / 2;  // bytes per super-block step

// Byte offset of weight k of row n (low nibble when k % 128 < 64, else high) in rows of k_pad weights.
inline int64_t dense_i4_offset(int64_t n, int64_t k, int64_t k_pad) {
  return ((n / kDenseI8RowGroup) * (k_pad / kDenseI4SuperBlock) + k / kDenseI4SuperBlock) * kDenseI4GroupStride +
         (n % kDenseI8RowGroup) * (kDenseI4SuperBlock / 2) + k % (kDenseI4SuperBlock / 2);
}
inline int dense_i4_shift(int64_t k) { return k % kDenseI4SuperBlock < kDenseI4SuperBlock / 2 ? 0 : 4; }
// Index of the scale of weight k of row n.
inline int64_t dense_i4_scale_index(int64_t n, int64_t k, int64_t k_pad) {
  constexpr int64_t kPerRow = kDenseI4SuperBlock / kDenseI4Group;  // 4 groups per super-block
  return ((n / kDenseI8RowGroup) * (k_pad / kDenseI4SuperBlock) + k / kDenseI4SuperBlock) * kDenseI8RowGroup * kPerRow +
         (n % kDenseI8RowGroup) * kPerRow + (k % kDenseI4SuperBlock) / kDenseI4Group;
}

struct DenseI4Args {
  const uint8_t* w;        // nibbles in the layout above (dense_i4_offset)
  const uint16_t* scales;  // f16, dense_i4_scale_index
  int64_t k_pad;           // multiple of 128
  const int8_t* x;         // tokens x x_stride, zero-padded to k_pad
  int64_t x_stride;
  const float* dequant;    // per token
  float* y;
  int64_t y_stride;
  int64_t row_begin, row_end, tokens;
};

struct DenseF16Args {
  const uint16_t* w;  // rows x k_stride halves
  int64_t k, k_stride;
  const float* x;     // tokens x x_stride
  int64_t x_stride;
  float* y;
  int64_t y_stride;
  int64_t row_begin, row_end, tokens;
};

struct DenseKernels {
  void (*gemm_i8)(const DenseI8Args& args);
  void (*gemm_f16)(const DenseF16Args& args);
  void (*gemm_i4)(const DenseI4Args& args);
};

const Family<DenseKernels>& dense_family();

}  // namespace bitnet::kernels
