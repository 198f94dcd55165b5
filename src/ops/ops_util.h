#pragma once
// Internal helpers shared by the op implementations.
#include <bitnet/ops.h>
#include <bitnet/thread_pool.h>

#include <algorithm>

namespace bitnet::detail {

// Below this many elements a loop is not worth a parallel region (~2 µs) on this kind of machine.
inline constexpr int64_t kParallelGrain = 1 << 15;

inline void check_defined(const Tensor& t, std::string_view op) {
  BITNET_CHECK(t.defined(), "[{}] the input tensor is undefined", op);
}

inline void check_floating(const Tensor& t, std::string_view op) {
  BITNET_CHECK(is_floating(t.dtype()), "[{}] expects a float tensor (f32, f16, bf16), got {}", op, t.str());
}

// The tensor as contiguous f32 (no copy when it already is).
inline Tensor f32_contiguous(const Tensor& t) { return t.to(DType::f32).contiguous(); }

// Runs fn(begin, end) over [0, n) elements in parallel when n is large enough to pay for it.
template <class F>
void parallel_elements(int64_t n, F&& fn) {
  if (n < 2 * kParallelGrain) {
    fn(int64_t{0}, n);
    return;
  }
  parallel_for(n, fn, kParallelGrain);
}

// Runs fn(row_begin, row_end) over `rows` rows of `row_len` elements each.
template <class F>
void parallel_rows(int64_t rows, int64_t row_len, F&& fn) {
  const int64_t min_rows = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, row_len));
  if (rows < 2 * min_rows) {
    fn(int64_t{0}, rows);
    return;
  }
  parallel_for(rows, fn, min_rows);
}

// Normalizes reduction axes (negative allowed, empty = all) into a sorted unique list.
std::vector<int64_t> normalize_axes(const Axes& axes, int64_t ndim, std::string_view op);

}  // namespace bitnet::detail
