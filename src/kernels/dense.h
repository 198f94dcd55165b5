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
// u in [0, 15]. Layout: a row is cut into super-blocks of 128 weights (4 groups), and the super-blocks of rows
// 4m..4m+3 are 256 consecutive bytes: four 64-byte vectors v = 0..3. A vector's 16 lanes of 4 bytes are the 16
// (row r, group g) pairs, lane 4r + g; the 4 bytes of that lane hold weights 32g + 4v .. 32g + 4v + 3 of row r in
// their low nibbles and weights 32g + 4(v + 4) .. + 3 in their high ones. Scales are a separate array in the same
// order: per row group and super-block, 16 halves, lane 4r + g. So one mask (or shift) of a vector gives 4
// weights of every (row, group) pair, and `vpdpbusd` against the activations in step order (below) sums each
// group's dot in its own lane: after the 8 steps of a super-block each lane holds one group's dot, which one
// conversion and one FMA with the 16 scales (one vcvtph2ps) add to the row group's 16 float sums. Spreading a
// group over 8 lanes instead (one group per 32 consecutive bytes, the layout until 2026-12-06) needed a
// conversion, a scale permute and an FMA per 8 lanes: about 14 vector operations per row and 64 bytes against 5-6
// now (AVX-512). The head GEMV in cache on 2 threads went from 60 to 98 GB/s (docs/kernels.md, "The int4 head in
// lanes").
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

// Rows [begin, end) of an interleaved layout: one(n) for single rows up to the first whole row group and after the
// last one, four(n) for each whole group of 4 rows starting at n. `static`: the ISA files each get their own copy
// (as x86_hsum.h), so none of them can end up running another's instructions.
template <typename One, typename Four>
static inline void over_row_groups(int64_t begin, int64_t end, One one, Four four) {
  int64_t n = begin;
  for (; n % kDenseI8RowGroup != 0 && n < end; ++n) one(n);
  for (; n + kDenseI8RowGroup <= end; n += kDenseI8RowGroup) four(n);
  for (; n < end; ++n) one(n);
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
inline constexpr int64_t kDenseI4SuperBlock = 128;  // weights per 64 bytes of one row (4 groups)
inline constexpr int64_t kDenseI4GroupStride = kDenseI8RowGroup * kDenseI4SuperBlock / 2;  // bytes per super-block step
inline constexpr int64_t kDenseI4Steps = 8;         // steps of 4 weights per group
inline constexpr int64_t kDenseI4StepBytes = 16;    // one step's activations: 4 groups x 4

// Byte offset of weight k of row n (low nibble in steps 0-3 of its group, high in 4-7) in rows of k_pad weights.
inline int64_t dense_i4_offset(int64_t n, int64_t k, int64_t k_pad) {
  const int64_t in_block = k % kDenseI4SuperBlock, step = in_block % kDenseI4Group / 4;
  return ((n / kDenseI8RowGroup) * (k_pad / kDenseI4SuperBlock) + k / kDenseI4SuperBlock) * kDenseI4GroupStride +
         (step % 4) * 64 + (n % kDenseI8RowGroup) * kDenseI4StepBytes + (in_block / kDenseI4Group) * 4 + k % 4;
}
inline int dense_i4_shift(int64_t k) { return k % kDenseI4Group / 4 < 4 ? 0 : 4; }
// Index of the scale of weight k of row n.
inline int64_t dense_i4_scale_index(int64_t n, int64_t k, int64_t k_pad) {
  constexpr int64_t kPerRow = kDenseI4SuperBlock / kDenseI4Group;  // 4 groups per super-block
  return ((n / kDenseI8RowGroup) * (k_pad / kDenseI4SuperBlock) + k / kDenseI4SuperBlock) * kDenseI8RowGroup * kPerRow +
         (n % kDenseI8RowGroup) * kPerRow + (k % kDenseI4SuperBlock) / kDenseI4Group;
}

// One token's activations (k_pad of them) in step order: per super-block 8 steps of 16 bytes, step s holding
// x[32g + 4s .. 32g + 4s + 3] for g = 0..3 (the same for every row, so one 16-byte broadcast serves 4 rows); and
// per group of 32, -8 times the sum of its activations, where each group's dot starts: sum((u - 8) x) =
// sum(u x) - 8 sum(x). Built once per call (int4_matmul), not per row group.
inline void dense_i4_step_order(const int8_t* x, int64_t k_pad, int8_t* steps, int32_t* offsets) {
  for (int64_t g0 = 0; g0 < k_pad; g0 += kDenseI4Group) {
    const int64_t block = g0 / kDenseI4SuperBlock * kDenseI4SuperBlock, g = g0 % kDenseI4SuperBlock / kDenseI4Group;
    int32_t sum = 0;
    for (int64_t k = 0; k < kDenseI4Group; ++k) {
      steps[block + k / 4 * kDenseI4StepBytes + g * 4 + k % 4] = x[g0 + k];
      sum += x[g0 + k];
    }
    offsets[g0 / kDenseI4Group] = -8 * sum;
  }
}

struct DenseI4Args {
  const uint8_t* w;          // nibbles in the layout above (dense_i4_offset)
  const uint16_t* scales;    // f16, dense_i4_scale_index
  int64_t k_pad;             // multiple of 128
  const int8_t* x;           // tokens x x_stride, zero-padded to k_pad (the reference reads these)
  int64_t x_stride;
  const int8_t* x_steps;     // tokens x k_pad: x in step order (dense_i4_step_order)
  const int32_t* x_offsets;  // tokens x k_pad / 32: -8 x each group's sum
  const float* dequant;      // per token
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
