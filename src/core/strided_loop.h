#pragma once
// Internal: visits every element of N strided operands that share one shape, one innermost row at a
// time, after merging dimensions that are contiguous for every operand (so a contiguous tensor is one row).
#include <bitnet/tensor.h>

#include <array>
#include <cstddef>
#include <vector>

namespace bitnet::detail {

template <size_t N>
class StridedLoop {
 public:
  // byte_strides[k][d]: stride in bytes of operand k along dimension d of `shape`.
  StridedLoop(const Shape& shape, const std::array<std::vector<int64_t>, N>& byte_strides) {
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 1) continue;  // size-1 dims contribute nothing
      const bool merge = !shape_.empty() && [&] {
        for (size_t k = 0; k < N; ++k)
          if (strides_[k].back() != byte_strides[k][d] * shape[d]) return false;
        return true;
      }();
      if (merge) {
        shape_.back() *= shape[d];
        for (size_t k = 0; k < N; ++k) strides_[k].back() = byte_strides[k][d];
      } else {
        shape_.push_back(shape[d]);
        for (size_t k = 0; k < N; ++k) strides_[k].push_back(byte_strides[k][d]);
      }
    }
    empty_ = shape_numel(shape);
  }

  // body(std::array<std::byte*, N> row_starts, std::array<int64_t, N> inner_byte_strides, int64_t n)
  template <class Body>
  void run(std::array<std::byte*, N> base, Body&& body) const {
    if (empty_ == 0) return;
    std::array<int64_t, N> inner{};
    if (shape_.empty()) {  // a single element
      body(base, inner, int64_t{1});
      return;
    }
    const size_t outer_dims = shape_.size() - 1;
    const int64_t n = shape_.back();
    for (size_t k = 0; k < N; ++k) inner[k] = strides_[k].back();
    std::vector<int64_t> index(outer_dims, 0);
    std::array<std::byte*, N> ptr = base;
    while (true) {
      body(ptr, inner, n);
      // advance the outer index like an odometer
      size_t d = outer_dims;
      while (d > 0) {
        --d;
        ++index[d];
        for (size_t k = 0; k < N; ++k) ptr[k] += strides_[k][d];
        if (index[d] < shape_[d]) goto next;
        for (size_t k = 0; k < N; ++k) ptr[k] -= strides_[k][d] * shape_[d];
        index[d] = 0;
      }
      return;
    next:;
    }
  }

 private:
  std::vector<int64_t> shape_;
  std::array<std::vector<int64_t>, N> strides_;
  int64_t empty_ = 1;
};

// Byte strides of a tensor (its element strides times its element size).
inline std::vector<int64_t> byte_strides(const Tensor& t) {
  std::vector<int64_t> s(t.strides().begin(), t.strides().end());
  for (auto& v : s) v *= static_cast<int64_t>(t.element_size());
  return s;
}

}  // namespace bitnet::detail
