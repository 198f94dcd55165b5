#pragma once
// 1/2/4/8-bit weight matrices packed for the n-bit kernels, and their product with int8 activations.
#include <bitnet/quant.h>
#include <bitnet/thread_pool.h>

#include <vector>

namespace bitnet {

class NbitMatrix {
 public:
  NbitMatrix() = default;
  // Packs quantized weights (see quantize_weights). Per-group quantization needs a group size that is a
  // multiple of 64.
  static NbitMatrix pack(const QuantizedWeights& q);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int bits() const { return bits_; }
  int64_t k_pad() const { return k_pad_; }
  size_t bytes() const { return data_.size(); }
  std::vector<uint8_t> unpack_codes() const;  // rows * cols codes, to check the packing

 private:
  friend void nbit_matmul(const NbitMatrix&, const QuantizedActivations&, float*, int64_t, ThreadPool&);
  int64_t rows_ = 0, cols_ = 0, k_pad_ = 0, group_ = 0, groups_per_row_ = 0, row_bytes_ = 0;
  int bits_ = 0;
  std::vector<uint8_t> data_;
  std::vector<float> scales_;         // rows x groups_per_row (padding groups have scale 0)
  std::vector<int32_t> zero_points_;  // same
};

// y[t * y_stride + n] = sum_k value(W[n, k]) * q[t, k] * dequant[t], threaded over rows.
void nbit_matmul(const NbitMatrix& w, const QuantizedActivations& x, float* y, int64_t y_stride,
                 ThreadPool& pool = default_pool());

}  // namespace bitnet
