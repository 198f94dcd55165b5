#pragma once
// Repacking ternary matrices from the CPU layout (TernaryMatrix) into the GPU layout (gpu_layout_math.h), once at
// load time; its CPU decoder; and a host reference of the GPU kernels' arithmetic.
#include <bitnet/ternary.h>

#include <cstdint>
#include <span>
#include <vector>

#include "cuda/gpu_layout_math.h"

namespace bitnet::cuda {

// A ternary matrix (or several with the same column count, rows concatenated: q|k|v, gate|up) in the GPU
// layout, with the per-row factors of the output: y = (float(dot) * (dequant[t] * tensor_scale[n])) *
// row_scale[n], which rounds exactly as the CPU's (float(dot) * (dequant[t] * scale)) [* row_scale[n]].
struct GpuTernary {
  int64_t rows = 0, cols = 0, k_pad = 0;
  std::vector<uint8_t> data;        // ceil(rows / 4) * 4 * k_pad / 4 bytes
  std::vector<float> tensor_scale;  // per row: the scale of the matrix the row came from
  std::vector<float> row_scale;     // per row: its per-channel scale, or 1
  int64_t n_chunks() const { return k_pad / kChunkWeights; }
};

// Repacks from the CPU layout (byte-level, no unpacking to int8). All parts must have the same column count.
GpuTernary pack_gpu_ternary(std::span<const TernaryMatrix* const> parts);
GpuTernary pack_gpu_ternary(const TernaryMatrix& m);
// CPU decoder of the GPU layout: rows * cols values in {-1, 0, +1}.
std::vector<int8_t> unpack_gpu_ternary(const GpuTernary& m);
// Host reference of the GPU kernels' arithmetic (chunk_dot and the epilogue) on the GPU layout. x: tokens rows
// of k_pad int8, x_stride bytes apart; y[t * y_stride + n] gets the result (added to y when accumulate).
void gpu_ternary_reference(const GpuTernary& m, const int8_t* x, int64_t x_stride, const int32_t* x_sum,
                           const float* dequant, int64_t tokens, float* y, int64_t y_stride, bool accumulate);

}  // namespace bitnet::cuda
