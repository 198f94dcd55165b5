#pragma once
// Dense (non-ternary) matrix products for the output head: int8 or int4 weights x int8 activations, and f16
// weights x f32 activations. The tied f16 embedding of 2B4T is more than half the bytes read per decoded
// token; its int8 copy halves that, its int4 copy (4.5 bits per weight) quarters it.
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

// A float matrix quantized to 4 bits in groups of 32 weights along a row, each group with an f16 scale d:
// value = d * q, q in [-8, 7] (16 levels, as llama.cpp's Q4_0). Per group, d is the one of a few candidates
// (the extreme value mapped to -8, -7.5, -7 or -6.5, each refitted by least squares) with the least squared
// error. Stored in the kernels' layout (kernels/dense.h): 4.5 bits per weight.
class Int4Matrix {
 public:
  Int4Matrix() = default;
  static Int4Matrix quantize(const Tensor& weights);  // [rows, cols], any float dtype or view

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t k_pad() const { return k_pad_; }
  const uint8_t* data() const { return data_.get(); }
  const uint16_t* scales() const { return scales_.data(); }
  size_t nibble_bytes() const { return static_cast<size_t>((rows_ + 3) / 4 * 4 * k_pad_ / 2); }
  size_t bytes() const { return nibble_bytes() + scales_.size() * sizeof(uint16_t); }  // read per token
  Tensor dequantize() const;  // [rows, cols] f32, what the kernels multiply by

 private:
  int64_t rows_ = 0, cols_ = 0, k_pad_ = 0;
  std::shared_ptr<uint8_t[]> data_;
  std::vector<uint16_t> scales_;
};

// y[t * y_stride + n] = (sum_k W[n, k] q[t, k]) * dequant[t] * row_scale[n], threaded over rows.
void int8_matmul(const Int8Matrix& w, const QuantizedActivations& x, float* y, int64_t y_stride,
                 ThreadPool& pool = default_pool());

// y[t * y_stride + n] = (sum over groups g of d[n, g] * sum_{k in g} q_w[n, k] q[t, k]) * dequant[t],
// threaded over rows.
void int4_matmul(const Int4Matrix& w, const QuantizedActivations& x, float* y, int64_t y_stride,
                 ThreadPool& pool = default_pool());

// y[t * y_stride + n] = sum_k w[n, k] x[t * x_stride + k] for an f16 tensor w [rows, cols] whose rows are
// contiguous (a memory-mapped embedding works without a copy), threaded over rows.
void f16_matmul(const Tensor& w, const float* x, int64_t tokens, int64_t x_stride, float* y, int64_t y_stride,
                ThreadPool& pool = default_pool());

}  // namespace bitnet
