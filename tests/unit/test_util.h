#pragma once
// Test helpers: seeded random tensors and a naive element-by-element reference iteration.
#include <bitnet/cpu.h>
#include <bitnet/tensor.h>

#include <ostream>

#include <functional>
#include <random>
#include <vector>

namespace bitnet {
// Test names and messages print an ISA by name.
inline void PrintTo(Isa isa, std::ostream* os) { *os << isa_name(isa); }
}  // namespace bitnet

namespace bitnet::test {

inline Tensor random_tensor(const Shape& shape, std::mt19937& rng, float lo = -2.0f, float hi = 2.0f,
                            DType dtype = DType::f32) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = dist(rng);
  Tensor t = Tensor::from_vector(v, shape);
  return dtype == DType::f32 ? t : t.to(dtype);
}

// Calls fn(index) for every multi-index of `shape` in row-major order.
inline void for_each_index(const Shape& shape, const std::function<void(const std::vector<int64_t>&)>& fn) {
  if (shape_numel(shape) == 0) return;
  std::vector<int64_t> idx(shape.size(), 0);
  while (true) {
    fn(idx);
    size_t d = shape.size();
    while (d > 0) {
      --d;
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
      if (d == 0) return;
    }
    if (shape.empty()) return;
  }
}

// Element of `t` at `idx` of a broadcast shape (NumPy rules: leading dims dropped, size-1 dims pinned).
inline double at_broadcast(const Tensor& t, const std::vector<int64_t>& idx) {
  std::vector<int64_t> own(static_cast<size_t>(t.ndim()));
  const size_t lead = idx.size() - own.size();
  for (size_t d = 0; d < own.size(); ++d) own[d] = t.shape()[d] == 1 ? 0 : idx[lead + d];
  return t.at(std::span<const int64_t>(own));
}

// y = x . w^T for 2-d x [t, k] and w [n, k], in double (no BLAS: the Arm test build has none).
inline Tensor naive_matmul_t(const Tensor& x, const Tensor& w) {
  const int64_t t = x.size(0), n = w.size(0), k = x.size(1);
  const auto xv = x.to_vector(), wv = w.to_vector();
  std::vector<float> y(static_cast<size_t>(t * n));
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(xv[static_cast<size_t>(i * k + p)]) * wv[static_cast<size_t>(j * k + p)];
      y[static_cast<size_t>(i * n + j)] = static_cast<float>(acc);
    }
  return Tensor::from_vector(y, {t, n});
}

}  // namespace bitnet::test
