// The int4 head matrix: grouped 4-bit quantization with a least-squares scale search, and its threaded
// product with int8 activations.
#include <bitnet/dense.h>
#include <bitnet/dtype.h>
#include <bitnet/thread_pool.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/dense.h"
#include "quant/matrix_util.h"

namespace bitnet {

namespace {

using kernels::kDenseI4Group;

// Levels of a group of 32 (zero-padded) values for scale d: clamp(round_half_even(x / d), -8, 7). The
// rounding adds and subtracts 1.5 * 2^23 (exact for |v| < 2^22; larger values clamp to -8 or 7 anyway), so
// the loop vectorizes on the baseline ISA, where nearbyint is a library call: quantizing the 2B4T head
// took 5 s with it.
void round_to_levels(const float* x, float d, float* q) {
  const float inv = d != 0 ? 1.0f / d : 0.0f;
  constexpr float kMagic = 12582912.0f;
  for (int i = 0; i < kDenseI4Group; ++i) q[i] = std::clamp((x[i] * inv + kMagic) - kMagic, -8.0f, 7.0f);
}

// The f16 scale of one group of n <= 32 values and their levels q (the best of a few candidates, see
// dense.h). The levels are rounded with the stored (f16) scale, so they are the best for that scale.
// The candidates' sums run side by side, each in its own order (i = 0..31, as one candidate alone): one chain of
// float adds per sum was latency-bound (the 2B4T head: about 3.5 s before, 2.3 s after, on 2 Zen 3 cores).
uint16_t quantize_group(const float* values, int64_t n, int8_t* q) {
  constexpr int kCandidates = 4;
  // Mapping the extreme to -8 (not +7) uses all 16 levels; the smaller divisors trade clipping of the
  // extreme for a finer step on the rest.
  constexpr float kExtremeLevel[kCandidates] = {-8.0f, -7.5f, -7.0f, -6.5f};
  float x[kDenseI4Group] = {};
  std::copy(values, values + n, x);
  float amax = 0;
  for (int i = 0; i < kDenseI4Group; ++i) amax = std::max(amax, std::fabs(x[i]));
  float extreme = 0;  // the first value of largest magnitude, with its sign
  for (int i = 0; i < kDenseI4Group && extreme == 0; ++i)
    if (std::fabs(x[i]) == amax) extreme = x[i];
  if (extreme == 0) {
    std::fill(q, q + n, int8_t{0});
    return 0;
  }
  float levels[kCandidates][kDenseI4Group];
  for (int c = 0; c < kCandidates; ++c) round_to_levels(x, extreme / kExtremeLevel[c], levels[c]);
  float xq[kCandidates] = {}, qq[kCandidates] = {}, d[kCandidates], err[kCandidates] = {};
  for (int i = 0; i < kDenseI4Group; ++i)
    for (int c = 0; c < kCandidates; ++c) {
      xq[c] += x[i] * levels[c][i];
      qq[c] += levels[c][i] * levels[c][i];
    }
  // The least-squares scale for each candidate's levels, as stored.
  for (int c = 0; c < kCandidates; ++c) d[c] = f16_to_f32(f32_to_f16(xq[c] / qq[c]));
  for (int i = 0; i < kDenseI4Group; ++i)
    for (int c = 0; c < kCandidates; ++c) err[c] += (x[i] - d[c] * levels[c][i]) * (x[i] - d[c] * levels[c][i]);
  float best_d = 0, best_err = INFINITY;
  for (int c = 0; c < kCandidates; ++c)
    if (err[c] < best_err) {
      best_err = err[c];
      best_d = d[c];
    }
  if (!(best_err < INFINITY)) return f32_to_f16(INFINITY);  // every scale overflows f16: the caller says so
  float best[kDenseI4Group];
  round_to_levels(x, best_d, best);
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int8_t>(best[i]);
  return f32_to_f16(best_d);
}

}  // namespace

Int4Matrix Int4Matrix::quantize(const Tensor& weights) {
  const detail::DenseShape shape = detail::dense_shape(weights, "int4_matrix");
  Int4Matrix m;
  m.rows_ = shape.rows;
  m.cols_ = shape.cols;
  m.k_pad_ = shape.k_pad;
  m.data_ = detail::counted_bytes(m.nibble_bytes(), 0x88);  // u = 8 (weight 0) in the padding
  m.scales_.assign(static_cast<size_t>((m.rows_ + 3) / 4 * 4 * m.k_pad_ / kDenseI4Group), 0);
  std::atomic<int64_t> bad_row{-1};
  detail::for_each_float_row(weights, [&](int64_t n, const float* row) {
    for (int64_t k = 0; k < m.cols_; ++k)
      if (!std::isfinite(row[k])) {
        bad_row.store(n);
        return;
      }
    uint8_t* out = m.data_.get();
    for (int64_t g = 0; g < m.cols_; g += kDenseI4Group) {
      const int64_t len = std::min(kDenseI4Group, m.cols_ - g);
      int8_t q[kDenseI4Group] = {};  // 0 (nibble 8, weight 0) past the last column
      const uint16_t d = quantize_group(row + g, len, q);
      if (!std::isfinite(f16_to_f32(d))) {
        bad_row.store(n);
        return;
      }
      m.scales_[static_cast<size_t>(kernels::dense_i4_scale_index(n, g, m.k_pad_))] = d;
      // A group fills 16 whole bytes: values i and 16 + i share one (dense.h's layout), each at its own shift,
      // so each byte is written once instead of two read-modify-write nibbles.
      static_assert(kDenseI4Group == 32);
      for (int i = 0; i < 16; ++i)
        out[kernels::dense_i4_offset(n, g + i, m.k_pad_)] =
            static_cast<uint8_t>((q[i] + 8) << kernels::dense_i4_shift(g + i) |
                                 (q[16 + i] + 8) << kernels::dense_i4_shift(g + 16 + i));
    }
  });
  BITNET_CHECK(bad_row.load() < 0,
               "[int4_matrix] row {} contains NaN or Inf, or values too large for an f16 group scale (|w| > 8 x 65504)",
               bad_row.load());
  return m;
}

Tensor Int4Matrix::dequantize() const {
  Tensor out = Tensor::empty({rows_, cols_});
  float* o = out.data_as<float>();
  for (int64_t n = 0; n < rows_; ++n)
    for (int64_t k = 0; k < cols_; ++k) {
      const int u = (data_[static_cast<size_t>(kernels::dense_i4_offset(n, k, k_pad_))] >> kernels::dense_i4_shift(k)) & 0xf;
      o[n * cols_ + k] = f16_to_f32(scales_[static_cast<size_t>(kernels::dense_i4_scale_index(n, k, k_pad_))]) *
                         static_cast<float>(u - 8);
    }
  return out;
}

void int4_matmul(const Int4Matrix& w, const QuantizedActivations& x, float* y, int64_t y_stride, ThreadPool& pool) {
  BITNET_CHECK(x.k() == w.cols() && x.k_pad() == w.k_pad(),
               "[int4_matmul] activations have {} columns but the weights {}", x.k(), w.cols());
  if (x.tokens() == 0) return;
  // The activations in the kernels' step order, once per call. Per thread and kept, so that a decode loop
  // allocates nothing after its first step (as QuantizedActivations).
  thread_local std::vector<int8_t> steps;
  thread_local std::vector<int32_t> offsets;
  const int64_t k_pad = w.k_pad(), groups = k_pad / kDenseI4Group;
  steps.resize(static_cast<size_t>(x.tokens() * k_pad));
  offsets.resize(static_cast<size_t>(x.tokens() * groups));
  for (int64_t t = 0; t < x.tokens(); ++t)
    kernels::dense_i4_step_order(x.row(t), k_pad, steps.data() + t * k_pad, offsets.data() + t * groups);
  const auto& k = kernels::dense_family().get();
  const kernels::DenseI4Args args{w.data(), w.scales(), k_pad,    x.row(0), x.k_pad(),  steps.data(), offsets.data(),
                                  x.dequant(), y,       y_stride, 0,        0,          x.tokens()};
  detail::split_rows(pool, w.rows(), args, k.gemm_i4);
}

}  // namespace bitnet
