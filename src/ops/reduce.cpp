// Reductions over any set of axes (or all), with keepdims, in NumPy's semantics.
#include <cmath>
#include <limits>
#include <numeric>

#include "core/element.h"
#include "kernels/vector.h"
#include "ops/ops_util.h"

namespace bitnet {

namespace detail {
std::vector<int64_t> normalize_axes(const Axes& axes, int64_t ndim, std::string_view op) {
  std::vector<int64_t> out;
  if (axes.empty()) {
    out.resize(static_cast<size_t>(ndim));
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  std::vector<bool> seen(static_cast<size_t>(ndim), false);
  for (int64_t a : axes) {
    const int64_t d = a < 0 ? a + ndim : a;
    BITNET_CHECK(d >= 0 && d < ndim, "[{}] axis {} is out of range for a {}-d tensor", op, a, ndim);
    BITNET_CHECK(!seen[static_cast<size_t>(d)], "[{}] axis {} repeated", op, a);
    seen[static_cast<size_t>(d)] = true;
  }
  for (int64_t d = 0; d < ndim; ++d)
    if (seen[static_cast<size_t>(d)]) out.push_back(d);
  return out;
}
}  // namespace detail

namespace {

// The input rearranged as contiguous rows [outer, inner]: one row per output element, the reduced axes
// last. Costs a copy only when the reduced axes are not already innermost and contiguous.
struct Rows {
  Tensor data;  // [outer * inner], contiguous
  int64_t outer = 1;
  int64_t inner = 1;
  Shape out_shape;
};

Rows to_rows(const Tensor& x, const Axes& axes, bool keepdims, std::string_view op, DType as) {
  detail::check_defined(x, op);
  const auto reduced = detail::normalize_axes(axes, x.ndim(), op);
  std::vector<bool> is_reduced(static_cast<size_t>(x.ndim()), false);
  for (int64_t d : reduced) is_reduced[static_cast<size_t>(d)] = true;
  std::vector<int64_t> perm;
  Rows rows;
  for (int64_t d = 0; d < x.ndim(); ++d) {
    if (!is_reduced[static_cast<size_t>(d)]) {
      perm.push_back(d);
      rows.outer *= x.shape()[static_cast<size_t>(d)];
      rows.out_shape.push_back(x.shape()[static_cast<size_t>(d)]);
    } else if (keepdims) {
      rows.out_shape.push_back(1);
    }
  }
  // keepdims keeps every axis in place: rebuild the shape in the original order.
  if (keepdims) {
    rows.out_shape.clear();
    for (int64_t d = 0; d < x.ndim(); ++d)
      rows.out_shape.push_back(is_reduced[static_cast<size_t>(d)] ? 1 : x.shape()[static_cast<size_t>(d)]);
  }
  for (int64_t d : reduced) {
    perm.push_back(d);
    rows.inner *= x.shape()[static_cast<size_t>(d)];
  }
  rows.data = x.permute(perm).to(as).contiguous();
  return rows;
}

// Reduces each row with a double-valued row function, in parallel over rows, or, for a few long rows,
// in parallel over pieces of each row combined with `combine`.
template <class RowFn, class Combine>
std::vector<double> reduce_rows(const Rows& rows, RowFn row_fn, Combine combine) {
  std::vector<double> result(static_cast<size_t>(rows.outer));
  const float* base = rows.data.data_as<float>();
  const int64_t inner = rows.inner;
  const int threads = default_pool().size();
  if (rows.outer < threads && inner >= 2 * detail::kParallelGrain) {
    for (int64_t r = 0; r < rows.outer; ++r) {
      std::vector<double> parts(static_cast<size_t>(threads), std::numeric_limits<double>::quiet_NaN());
      std::vector<bool> used(static_cast<size_t>(threads), false);
      const float* row = base + r * inner;
      parallel_for(threads, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t s = inner * t / threads, e = inner * (t + 1) / threads;
          parts[static_cast<size_t>(t)] = row_fn(row + s, e - s);
        }
      });
      double acc = parts[0];
      for (int t = 1; t < threads; ++t) acc = combine(acc, parts[static_cast<size_t>(t)]);
      result[static_cast<size_t>(r)] = acc;
    }
    return result;
  }
  detail::parallel_rows(rows.outer, inner, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) result[static_cast<size_t>(r)] = row_fn(base + r * inner, inner);
  });
  return result;
}

Tensor from_values(const std::vector<double>& values, const Shape& shape, DType dtype) {
  Tensor out = Tensor::empty(shape, dtype);
  auto* p = static_cast<std::byte*>(out.data());
  for (size_t i = 0; i < values.size(); ++i)
    detail::store_wrapped(p + i * out.element_size(), dtype, values[i]);
  return out;
}

// Integer reductions (sum, min, max) in exact 64-bit arithmetic.
Tensor reduce_integer(const Tensor& x, const Axes& axes, bool keepdims, std::string_view op, int kind) {
  Rows rows = to_rows(x, axes, keepdims, op, DType::i32);
  if (kind != 0)
    BITNET_CHECK(rows.inner > 0, "[{}] zero-size reduction has no identity", op);
  std::vector<double> values(static_cast<size_t>(rows.outer));
  const auto* p = rows.data.data_as<int32_t>();
  for (int64_t r = 0; r < rows.outer; ++r) {
    int64_t acc = kind == 0 ? 0 : p[r * rows.inner];
    for (int64_t i = 0; i < rows.inner; ++i) {
      const int64_t v = p[r * rows.inner + i];
      acc = kind == 0 ? acc + v : (kind > 0 ? std::max(acc, v) : std::min(acc, v));
    }
    values[static_cast<size_t>(r)] = static_cast<double>(kind == 0 ? static_cast<int32_t>(acc) : acc);
  }
  return from_values(values, rows.out_shape, kind == 0 ? DType::i32 : x.dtype());
}

double add_parts(double a, double b) { return a + b; }

}  // namespace

Tensor sum(const Tensor& x, const Axes& axes, bool keepdims) {
  detail::check_defined(x, "sum");
  if (!is_floating(x.dtype())) return reduce_integer(x, axes, keepdims, "sum", 0);
  Rows rows = to_rows(x, axes, keepdims, "sum", DType::f32);
  const auto& k = kernels::vector_kernels();
  return from_values(reduce_rows(rows, k.sum, add_parts), rows.out_shape, DType::f32);
}

Tensor mean(const Tensor& x, const Axes& axes, bool keepdims) {
  detail::check_defined(x, "mean");
  Rows rows = to_rows(x, axes, keepdims, "mean", DType::f32);
  const auto& k = kernels::vector_kernels();
  auto values = reduce_rows(rows, k.sum, add_parts);
  for (double& v : values) v /= static_cast<double>(rows.inner);  // 0/0 = NaN for an empty row, as NumPy
  return from_values(values, rows.out_shape, DType::f32);
}

Tensor var(const Tensor& x, const Axes& axes, bool keepdims, int64_t ddof) {
  detail::check_defined(x, "var");
  BITNET_CHECK(ddof >= 0, "[var] ddof must be non-negative, got {}", ddof);
  Rows rows = to_rows(x, axes, keepdims, "var", DType::f32);
  const auto& k = kernels::vector_kernels();
  std::vector<double> values(static_cast<size_t>(rows.outer));
  const float* base = rows.data.data_as<float>();
  const int64_t n = rows.inner;
  // Two passes (mean, then squared deviations): stable where the one-pass formula cancels.
  detail::parallel_rows(rows.outer, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = base + r * n;
      const double m = k.sum(row, n) / static_cast<double>(n);
      const double denom = static_cast<double>(n - ddof);
      values[static_cast<size_t>(r)] =
          denom > 0 ? k.sum_sq_dev(row, m, n) / denom : std::numeric_limits<double>::quiet_NaN();
    }
  });
  return from_values(values, rows.out_shape, DType::f32);
}

Tensor std(const Tensor& x, const Axes& axes, bool keepdims, int64_t ddof) {
  return sqrt(var(x, axes, keepdims, ddof));
}

namespace {
Tensor extreme(const Tensor& x, const Axes& axes, bool keepdims, bool is_max) {
  const std::string_view op = is_max ? "max" : "min";
  detail::check_defined(x, op);
  if (!is_floating(x.dtype())) return reduce_integer(x, axes, keepdims, op, is_max ? 1 : -1);
  Rows rows = to_rows(x, axes, keepdims, op, DType::f32);
  BITNET_CHECK(rows.inner > 0, "[{}] zero-size reduction has no identity", op);
  const auto& k = kernels::vector_kernels();
  auto row_fn = [&](const float* p, int64_t n) -> double { return is_max ? k.max(p, n) : k.min(p, n); };
  auto combine = [is_max](double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
    return is_max ? std::max(a, b) : std::min(a, b);
  };
  const DType out_type = x.dtype();  // min/max are exact: keep f16/bf16
  return from_values(reduce_rows(rows, row_fn, combine), rows.out_shape, out_type);
}
}  // namespace

Tensor min(const Tensor& x, const Axes& axes, bool keepdims) { return extreme(x, axes, keepdims, false); }
Tensor max(const Tensor& x, const Axes& axes, bool keepdims) { return extreme(x, axes, keepdims, true); }

Tensor argmax(const Tensor& x, std::optional<int64_t> axis, bool keepdims) {
  detail::check_defined(x, "argmax");
  Axes axes;
  if (axis) axes.push_back(*axis);
  Rows rows = to_rows(x, axes, keepdims, "argmax", is_floating(x.dtype()) ? DType::f32 : DType::i32);
  BITNET_CHECK(rows.inner > 0, "[argmax] attempt to take the argmax of an empty sequence");
  if (!axis && keepdims) rows.out_shape = Shape(static_cast<size_t>(x.ndim()), 1);
  std::vector<double> values(static_cast<size_t>(rows.outer));
  const auto* bytes = static_cast<const std::byte*>(rows.data.data());
  const DType t = rows.data.dtype();
  for (int64_t r = 0; r < rows.outer; ++r) {
    int64_t best = 0;
    double best_v = detail::load_element(bytes + r * rows.inner * rows.data.element_size(), t);
    for (int64_t i = 1; i < rows.inner && !std::isnan(best_v); ++i) {
      const double v = detail::load_element(bytes + (r * rows.inner + i) * rows.data.element_size(), t);
      if (v > best_v || std::isnan(v)) {  // the first NaN wins, as in NumPy
        best = i;
        best_v = v;
      }
    }
    values[static_cast<size_t>(r)] = static_cast<double>(best);
  }
  return from_values(values, rows.out_shape, DType::i32);
}

}  // namespace bitnet
