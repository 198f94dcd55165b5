// The int8 head matrix and the threaded dense products.
#include <bitnet/dense.h>
#include <bitnet/dtype.h>
#include <bitnet/thread_pool.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "kernels/dense.h"
#include "quant/matrix_util.h"

namespace bitnet {

Int8Matrix Int8Matrix::quantize(const Tensor& weights) {
  const detail::DenseShape shape = detail::dense_shape(weights, "int8_matrix");
  Int8Matrix m;
  m.rows_ = shape.rows;
  m.cols_ = shape.cols;
  m.k_pad_ = shape.k_pad;
  m.data_ = detail::counted_bytes(m.bytes(), 128);  // weight 0 in the padding
  m.row_scales_.resize(static_cast<size_t>(m.rows_));
  std::atomic<int64_t> bad_row{-1};
  detail::for_each_float_row(weights, [&](int64_t n, const float* row) {
    float amax = 0;
    for (int64_t k = 0; k < m.cols_; ++k) amax = std::max(amax, std::fabs(row[k]));
    if (!std::isfinite(amax)) {
      bad_row.store(n);
      return;
    }
    const float scale = amax > 0 ? amax / 127.0f : 1.0f;
    const float inv = 1.0f / scale;
    uint8_t* out = m.data_.get();
    // Round half to even as nearbyint does, by adding and subtracting 1.5 x 2^23 (exact: |row[k] x inv| <= 127):
    // on the baseline ISA nearbyint is a library call per weight (int4_matrix.cpp does the same).
    constexpr float kMagic = 12582912.0f;
    for (int64_t k = 0; k < m.cols_; ++k) {
      const float q = std::clamp((row[k] * inv + kMagic) - kMagic, -127.0f, 127.0f);
      out[kernels::dense_i8_offset(n, k, m.k_pad_)] = static_cast<uint8_t>(static_cast<int>(q) + 128);
    }
    m.row_scales_[static_cast<size_t>(n)] = scale;
  });
  BITNET_CHECK(bad_row.load() < 0, "[int8_matrix] row {} contains NaN or Inf", bad_row.load());
  return m;
}

std::vector<int8_t> Int8Matrix::unpack() const {
  std::vector<int8_t> out(static_cast<size_t>(rows_ * cols_));
  for (int64_t n = 0; n < rows_; ++n)
    for (int64_t k = 0; k < cols_; ++k)
      out[static_cast<size_t>(n * cols_ + k)] = static_cast<int8_t>(data_[static_cast<size_t>(kernels::dense_i8_offset(n, k, k_pad_))] - 128);
  return out;
}

std::vector<uint8_t> Int8Matrix::row_major() const {
  std::vector<uint8_t> out(static_cast<size_t>(rows_ * k_pad_));
  for (int64_t n = 0; n < rows_; ++n)
    for (int64_t b = 0; b < k_pad_ / kernels::kDenseI8Block; ++b)
      std::memcpy(out.data() + n * k_pad_ + b * kernels::kDenseI8Block,
                  data_.get() + kernels::dense_i8_offset(n, b * kernels::kDenseI8Block, k_pad_), kernels::kDenseI8Block);
  return out;
}

void int8_matmul(const Int8Matrix& w, const QuantizedActivations& x, float* y, int64_t y_stride, ThreadPool& pool) {
  BITNET_CHECK(x.k() == w.cols() && x.k_pad() == w.k_pad(),
               "[int8_matmul] activations have {} columns but the weights {}", x.k(), w.cols());
  if (x.tokens() == 0) return;
  const auto& k = kernels::dense_family().get();
  const kernels::DenseI8Args args{w.data(), w.k_pad(), w.row_scales().data(), x.row(0), x.k_pad(), x.sums(),
                                  x.dequant(), y, y_stride, 0, 0, x.tokens()};
  detail::split_rows(pool, w.rows(), args, k.gemm_i8);
}

void f16_matmul(const Tensor& w, const float* x, int64_t tokens, int64_t x_stride, float* y, int64_t y_stride,
                ThreadPool& pool) {
  BITNET_CHECK(w.defined() && w.dtype() == DType::f16 && w.ndim() == 2 && w.strides()[1] == 1,
               "[f16_matmul] expects an f16 matrix with contiguous rows, got {}", w.defined() ? w.str() : "undefined");
  if (tokens == 0) return;
  const auto& k = kernels::dense_family().get();
  const kernels::DenseF16Args args{static_cast<const uint16_t*>(w.data()), w.size(1), w.strides()[0], x, x_stride, y,
                                   y_stride, 0, 0, tokens};
  detail::split_rows(pool, w.size(0), args, k.gemm_f16);
}

}  // namespace bitnet
