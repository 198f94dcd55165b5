#pragma once
// Internal: visits the rows of a 2-d float matrix as f32, in parallel, without an f32 copy of the whole
// matrix (a 128k x 2560 f16 head would need 1.3 GB): f16 rows are converted one at a time into a per-thread
// buffer. Used by the head quantizers.
#include <bitnet/dtype.h>
#include <bitnet/error.h>
#include <bitnet/tensor.h>
#include <bitnet/thread_pool.h>

#include <string_view>
#include <vector>

#include "kernels/vector.h"

namespace bitnet::detail {

// fn(n, row) for every row n, row = cols floats; `who` names the caller in errors.
template <typename F>
void for_each_float_row(const Tensor& weights, std::string_view who, F&& fn) {
  BITNET_CHECK(weights.defined() && weights.ndim() == 2 && is_floating(weights.dtype()),
               "[{}] expects a 2-d float tensor, got {}", who, weights.defined() ? weights.str() : "undefined");
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

}  // namespace bitnet::detail
