#pragma once
// Internal: what the weight-matrix classes of the dense and n-bit products share: visiting a float matrix's
// rows as f32, checking its shape, the kernels' padded buffer, and splitting output rows over a pool.
#include <bitnet/dtype.h>
#include <bitnet/error.h>
#include <bitnet/memory.h>
#include <bitnet/tensor.h>
#include <bitnet/thread_pool.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "kernels/dense.h"
#include "kernels/ternary.h"
#include "kernels/vector.h"

namespace bitnet::detail {

// A weight matrix for the dense kernels: rows x cols, rows padded to k_pad (a multiple of 256, as the
// activations are).
struct DenseShape {
  int64_t rows, cols, k_pad;
};

// Checks `weights` (a non-empty 2-d float tensor with at most kMaxDenseI8K columns); `who` names the caller.
inline DenseShape dense_shape(const Tensor& weights, std::string_view who) {
  BITNET_CHECK(weights.defined() && weights.ndim() == 2 && is_floating(weights.dtype()),
               "[{}] expects a 2-d float tensor, got {}", who, weights.defined() ? weights.str() : "undefined");
  const int64_t rows = weights.size(0), cols = weights.size(1);
  BITNET_CHECK(rows > 0 && cols > 0 && cols <= kernels::kMaxDenseI8K,
               "[{}] need a non-empty matrix with at most {} columns, got {}", who, kernels::kMaxDenseI8K, weights.str());
  return {rows, cols, (cols + kernels::kTernaryBlock - 1) / kernels::kTernaryBlock * kernels::kTernaryBlock};
}

// `bytes` filled with `fill` (the encoding of weight 0, for the padding), counted (memory_stats) and, when
// large, on huge pages: see aligned_alloc_counted.
inline std::shared_ptr<uint8_t[]> counted_bytes(size_t bytes, uint8_t fill) {
  std::shared_ptr<uint8_t[]> p(static_cast<uint8_t*>(aligned_alloc_counted(bytes)),
                               [bytes](uint8_t* q) { aligned_free_counted(q, bytes); });
  std::memset(p.get(), fill, bytes);
  return p;
}

// fn(n, row) for every row n of a 2-d float tensor, row = cols floats, in parallel. f16 rows are converted
// one at a time into a per-thread buffer: no f32 copy of the whole matrix (a 128k x 2560 f16 head would need
// 1.3 GB).
template <typename F>
void for_each_float_row(const Tensor& weights, F&& fn) {
  const Tensor w = weights.dtype() == DType::f16 || weights.dtype() == DType::f32 ? weights.contiguous()
                                                                                   : weights.to(DType::f32).contiguous();
  const int64_t rows = w.size(0), cols = w.size(1);
  const bool f16 = w.dtype() == DType::f16;
  const auto convert = kernels::vector_family().get().f16_to_f32;  // vectorized (F16C where there is one)
  default_pool().parallel_for(rows, [&](int64_t n0, int64_t n1) {
    std::vector<float> buf(f16 ? static_cast<size_t>(cols) : 0);
    for (int64_t n = n0; n < n1; ++n) {
      const float* row;
      if (f16) {
        convert(w.data_as<uint16_t>() + n * cols, buf.data(), cols);
        row = buf.data();
      } else {
        row = w.data_as<float>() + n * cols;
      }
      fn(n, row);
    }
  }, 64);
}

// kernel(part) over the pool, each part a copy of `args` with [row_begin, row_end) set to units of 16 output
// rows (whole 4-row groups of the interleaved layouts).
template <typename Args, typename Kernel>
void split_rows(ThreadPool& pool, int64_t rows, const Args& args, Kernel kernel) {
  pool.parallel_for((rows + 15) / 16, [&](int64_t u0, int64_t u1) {
    Args part = args;
    part.row_begin = u0 * 16;
    part.row_end = std::min(u1 * 16, rows);
    kernel(part);
  });
}

}  // namespace bitnet::detail
