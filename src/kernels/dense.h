#pragma once
// Internal: dense kernels for the output head (and any full-precision layer): int8 x int8 and f16 x f32.
//
// int8 weights are stored offset by +128 as u8 (rows of k_pad bytes, zero weight = 128 in the padding), so
// that `vpdpbusd` (u8 x s8) applies; the offset is removed with the activation sum: sum((w + 128) x) -
// 128 sum(x) = sum(w x), exact in int32 for k_pad <= 2^17. Output: float(dot) * scale[t] * row_scale[n].
// f16 weights are rows of k halves (k_stride apart); y = sum_k w * x accumulated in f32 (variants differ in
// summation order, so they agree within a tolerance, not bit for bit).
#include <cstdint>

#include "kernels/dispatch.h"

namespace bitnet::kernels {

inline constexpr int64_t kMaxDenseI8K = int64_t{1} << 17;

struct DenseI8Args {
  const uint8_t* w;        // rows x k_pad, value + 128
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
};

const Family<DenseKernels>& dense_family();

}  // namespace bitnet::kernels
