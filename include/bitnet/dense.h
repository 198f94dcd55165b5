#pragma once
// Dense (non-ternary) matrix products for the output head: int8 weights x int8 activations, and f16 weights
// x f32 activations. The tied f16 embedding of 2B4T is more than half the bytes read per decoded token; its
// int8 copy halves that.
#include <bitnet/quant.h>
#include <bitnet/tensor.h>
#include <bitnet/thread_pool.h>

#include <memory>
#include <vector>

namespace bitnet {

// A float matrix quantized per row to int8 (scale = max|row| / 127, values in [-127, 127]), stored in the
// kernel's layout (offset by +128, rows padded to a multiple of 256 columns).
class Int8Matrix {
 public:
  Int8Matrix() = default;
  static Int8Matrix quantize(const Tensor& weights);  // [rows, cols], any float dtype or view

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t k_pad() const { return k_pad_; }
  const std::vector<float>& row_scales() const { return row_scales_; }
  const uint8_t* data() const { return data_.get(); }
  // The kernels' layout: value + 128 in 64-byte blocks, rows interleaved in groups of 4 (kernels/dense.h).
  size_t bytes() const { return static_cast<size_t>((rows_ + 3) / 4 * 4 * k_pad_); }
  std::vector<int8_t> unpack() const;  // rows * cols int8 values
  std::vector<uint8_t> row_major() const;  // rows * k_pad bytes, value + 128 (the CUDA head's layout)

 private:
  int64_t rows_ = 0, cols_ = 0, k_pad_ = 0;
  std::vector<float> row_scales_;
  std::shared_ptr<uint8_t[]> data_;
};

// y[t * y_stride + n] = (sum_k W[n, k] q[t, k]) * dequant[t] * row_scale[n], threaded over rows.
void int8_matmul(const Int8Matrix& w, const QuantizedActivations& x, float* y, int64_t y_stride,
                 ThreadPool& pool = default_pool());

// y[t * y_stride + n] = sum_k w[n, k] x[t * x_stride + k] for an f16 tensor w [rows, cols] whose rows are
// contiguous (a memory-mapped embedding works without a copy), threaded over rows.
void f16_matmul(const Tensor& w, const float* x, int64_t tokens, int64_t x_stride, float* y, int64_t y_stride,
                ThreadPool& pool = default_pool());

}  // namespace bitnet
