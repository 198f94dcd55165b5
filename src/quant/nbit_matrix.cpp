// Packing 1/2/4/8-bit codes for the n-bit kernels (layout in kernels/nbit.h) and the threaded product.
#include <bitnet/nbit.h>

#include "kernels/nbit.h"
#include "kernels/ternary.h"
#include "quant/matrix_util.h"

namespace bitnet {

namespace {
// Byte and shift of code k within a row (see kernels/nbit.h).
std::pair<int64_t, int> code_position(int64_t k, int bits) {
  const int64_t chunk = k / 64, e = k % 64, bytes = 8 * bits;
  return {chunk * bytes + e % bytes, static_cast<int>(bits * (e / bytes))};
}
}  // namespace

NbitMatrix NbitMatrix::pack(const QuantizedWeights& q) {
  const int bits = q.spec.bits;
  BITNET_CHECK(bits == 1 || bits == 2 || bits == 4 || bits == 8, "[nbit] bits must be 1, 2, 4 or 8, got {}", bits);
  BITNET_CHECK(q.rows > 0 && q.cols > 0 && static_cast<int64_t>(q.codes.size()) == q.rows * q.cols,
               "[nbit] quantized weights are empty or inconsistent ({} x {}, {} codes)", q.rows, q.cols, q.codes.size());
  NbitMatrix m;
  m.rows_ = q.rows;
  m.cols_ = q.cols;
  m.bits_ = bits;
  m.k_pad_ = (q.cols + kernels::kTernaryBlock - 1) / kernels::kTernaryBlock * kernels::kTernaryBlock;
  m.row_bytes_ = m.k_pad_ / 64 * 8 * bits;
  // One scale per group of `group_` codes; per tensor and per channel use one group per (padded) row.
  if (q.spec.granularity == Granularity::per_group) {
    BITNET_CHECK(q.spec.group_size % 64 == 0, "[nbit] group size {} must be a multiple of 64 for the kernels",
                 q.spec.group_size);
    m.group_ = q.spec.group_size;
  } else {
    m.group_ = m.k_pad_;
  }
  m.groups_per_row_ = (m.k_pad_ + m.group_ - 1) / m.group_;
  BITNET_CHECK(m.groups_per_row_ * m.group_ == m.k_pad_ || q.spec.granularity != Granularity::per_group,
               "[nbit] group size {} does not tile the padded row of {}", m.group_, m.k_pad_);
  m.scales_.assign(static_cast<size_t>(m.rows_ * m.groups_per_row_), 0.0f);
  m.zero_points_.assign(m.scales_.size(), 0);
  const int64_t real_groups = q.spec.granularity == Granularity::per_group ? q.cols / m.group_ : 1;
  for (int64_t n = 0; n < m.rows_; ++n)
    for (int64_t g = 0; g < real_groups; ++g) {
      const size_t src = q.spec.granularity == Granularity::per_tensor    ? 0
                         : q.spec.granularity == Granularity::per_channel ? static_cast<size_t>(n)
                                                                          : static_cast<size_t>(n * real_groups + g);
      const auto dst = static_cast<size_t>(n * m.groups_per_row_ + g);
      m.scales_[dst] = q.scales[src];
      m.zero_points_[dst] = bits == 1 ? 0 : q.zero_points[src];
    }
  m.data_.assign(static_cast<size_t>(m.rows_ * m.row_bytes_), 0);
  for (int64_t n = 0; n < m.rows_; ++n)
    for (int64_t k = 0; k < m.cols_; ++k) {
      const auto [byte, shift] = code_position(k, bits);
      m.data_[static_cast<size_t>(n * m.row_bytes_ + byte)] |=
          static_cast<uint8_t>(q.codes[static_cast<size_t>(n * m.cols_ + k)] << shift);
    }
  return m;
}

std::vector<uint8_t> NbitMatrix::unpack_codes() const {
  std::vector<uint8_t> out(static_cast<size_t>(rows_ * cols_));
  for (int64_t n = 0; n < rows_; ++n)
    for (int64_t k = 0; k < cols_; ++k) {
      const auto [byte, shift] = code_position(k, bits_);
      out[static_cast<size_t>(n * cols_ + k)] =
          static_cast<uint8_t>((data_[static_cast<size_t>(n * row_bytes_ + byte)] >> shift) & ((1 << bits_) - 1));
    }
  return out;
}

void nbit_matmul(const NbitMatrix& w, const QuantizedActivations& x, float* y, int64_t y_stride, ThreadPool& pool) {
  BITNET_CHECK(x.k() == w.cols() && x.k_pad() == w.k_pad(), "[nbit_matmul] activations have {} columns but the weights {}",
               x.k(), w.cols());
  const int64_t tokens = x.tokens();
  if (tokens == 0) return;
  std::vector<int32_t> group_sums(static_cast<size_t>(tokens * w.groups_per_row_));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t g = 0; g < w.groups_per_row_; ++g) {
      int32_t s = 0;
      for (int64_t k = g * w.group_; k < std::min((g + 1) * w.group_, w.k_pad_); ++k) s += x.row(t)[k];
      group_sums[static_cast<size_t>(t * w.groups_per_row_ + g)] = s;
    }
  const auto& k = kernels::nbit_family().get();
  const kernels::NbitArgs args{w.data_.data(), w.bits_,    w.row_bytes_,     w.group_,  w.groups_per_row_,
                               w.scales_.data(), w.zero_points_.data(), w.groups_per_row_, 1, x.row(0),
                               x.k_pad(),       group_sums.data(), x.dequant(), y, y_stride, 0, 0, tokens};
  detail::split_rows(pool, w.rows(), args, k.gemm);
}

}  // namespace bitnet
