#pragma once
// Internal: 1/2/4/8-bit weights x int8 activations, with a scale and zero point per tensor, row or group.
//
// Layout: each row is padded to a multiple of 64 codes; a chunk of 64 codes takes 8*bits bytes, and byte j
// of a chunk holds the codes j + 8*bits*s (s = 0 .. 8/bits - 1) at bit shift bits*s. (8 bits: byte j is code
// j; 4 bits: code j in the low nibble, j+32 in the high one; 2 bits: j, j+16, j+32, j+48; 1 bit: bit s of byte
// j is code j + 8s.) One shift and mask per s then gives codes of consecutive weights.
// Value = (code - zero_point) * scale; 1 bit is (2 code - 1) * scale (a sign). Per group g and token t:
//   partial_g = scale_g * (sum_{k in g} code_k x_k - zp_g * sum_{k in g} x_k)  (1 bit: 2 dot - sum),
// summed over the groups of a row in order, times the token's dequant factor. Integer parts are exact and
// the float sum runs in the same order in every variant, so variants agree bit for bit.
#include <cstdint>

#include "kernels/dispatch.h"

namespace bitnet::kernels {

struct NbitArgs {
  const uint8_t* w;           // rows x row_bytes
  int bits;                   // 1, 2, 4 or 8
  int64_t row_bytes;          // k_pad / 64 * 8 * bits
  int64_t group;              // codes per scale (a multiple of 64), groups_per_row * group = k_pad
  int64_t groups_per_row;
  const float* scales;        // per (row, group), or per row / tensor through the strides below
  const int32_t* zero_points; // same indexing as scales
  int64_t scale_row_stride;   // 0 for one scale per tensor
  int64_t scale_group_stride; // 0 when one scale covers the whole row
  const int8_t* x;            // tokens x x_stride, zero-padded to k_pad
  int64_t x_stride;
  const int32_t* group_sums;  // tokens x groups_per_row: sum of x over each group
  const float* dequant;       // per token
  float* y;
  int64_t y_stride;
  int64_t row_begin, row_end, tokens;
};

struct NbitKernels {
  void (*gemm)(const NbitArgs& args);
};

const Family<NbitKernels>& nbit_family();

}  // namespace bitnet::kernels
