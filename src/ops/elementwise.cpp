// Elementwise arithmetic, comparisons and where, with NumPy broadcasting and type promotion.
#include <cmath>
#include <optional>

#include "core/element.h"
#include "core/strided_loop.h"
#include "kernels/vector.h"
#include "ops/ops_util.h"

namespace bitnet {

using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {

constexpr std::string_view kBinaryNames[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};

double apply(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return std::pow(a, b);
    case BinaryOp::maximum: return std::isnan(a) ? a : (std::isnan(b) ? b : std::max(a, b));
    case BinaryOp::minimum: return std::isnan(a) ? a : (std::isnan(b) ? b : std::min(a, b));
  }
  return 0;
}

// True when `b` (contiguous) broadcasts along the leading dims of `shape` only, i.e. it repeats once per
// row of length b.numel() in a contiguous tensor of `shape`.
bool is_row_broadcast(const Tensor& b, const Shape& shape) {
  if (!b.is_contiguous() || b.numel() == 0) return false;
  const Shape& bs = b.shape();
  size_t lead = 0;
  while (lead < bs.size() && bs[lead] == 1) ++lead;
  const size_t tail = bs.size() - lead;
  if (tail > shape.size()) return false;
  for (size_t i = 0; i < tail; ++i)
    if (bs[lead + i] != shape[shape.size() - tail + i]) return false;
  return true;
}

// `forced` overrides the promoted result dtype (the scalar forms use it).
Tensor binary_op(const Tensor& a, const Tensor& b, BinaryOp op, std::optional<DType> forced = std::nullopt) {
  const std::string_view name = kBinaryNames[static_cast<int>(op)];
  detail::check_defined(a, name);
  detail::check_defined(b, name);
  DType out_type = forced.value_or(promote_types(a.dtype(), b.dtype()));
  if (op == BinaryOp::div && !is_floating(out_type)) out_type = DType::f32;
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, out_type);
  const int64_t n = out.numel();
  if (n == 0) return out;

  if (out_type == DType::f32 && a.dtype() == DType::f32 && b.dtype() == DType::f32 && a.shape() == shape &&
      a.is_contiguous()) {
    const auto& k = kernels::vector_kernels();
    const float* pa = a.data_as<float>();
    float* po = out.data_as<float>();
    if (b.shape() == shape && b.is_contiguous()) {
      const float* pb = b.data_as<float>();
      detail::parallel_elements(n, [&](int64_t s, int64_t e) {
        k.binary[static_cast<int>(op)](pa + s, pb + s, po + s, e - s);
      });
      return out;
    }
    if (b.numel() == 1) {
      const auto sb = static_cast<float>(b.item());
      detail::parallel_elements(n, [&](int64_t s, int64_t e) {
        k.binary_scalar[static_cast<int>(op)](pa + s, sb, po + s, e - s);
      });
      return out;
    }
    if (is_row_broadcast(b, shape)) {
      const float* pb = b.data_as<float>();
      const int64_t len = b.numel();
      detail::parallel_rows(n / len, len, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) k.binary[static_cast<int>(op)](pa + r * len, pb, po + r * len, len);
      });
      return out;
    }
  }

  // General path: any dtypes, strides and broadcasting, computed in double.
  const Tensor ab = a.broadcast_to(shape), bb = b.broadcast_to(shape);
  const DType ta = a.dtype(), tb = b.dtype();
  detail::StridedLoop<3> loop(shape, {detail::byte_strides(out), detail::byte_strides(ab), detail::byte_strides(bb)});
  loop.run({static_cast<std::byte*>(out.data()), const_cast<std::byte*>(static_cast<const std::byte*>(ab.data())),
            const_cast<std::byte*>(static_cast<const std::byte*>(bb.data()))},
           [&](auto p, auto st, int64_t len) {
             for (int64_t i = 0; i < len; ++i) {
               const double r = apply(op, detail::load_element(p[1] + i * st[1], ta),
                                      detail::load_element(p[2] + i * st[2], tb));
               detail::store_wrapped(p[0] + i * st[0], out_type, r);
             }
           });
  return out;
}

// NumPy 2's rule for Python scalars: the result keeps the tensor's dtype, except that a non-integral scalar
// with an integer tensor gives f32 (and div always gives a float).
Tensor binary_scalar(const Tensor& a, double s, BinaryOp op) {
  detail::check_defined(a, kBinaryNames[static_cast<int>(op)]);
  if (is_floating(a.dtype())) return binary_op(a, Tensor::scalar(s, DType::f32), op, a.dtype());
  const bool integral = std::trunc(s) == s && std::fabs(s) < 2147483648.0;
  if (integral) return binary_op(a, Tensor::scalar(s, DType::i32), op, a.dtype());
  return binary_op(a, Tensor::scalar(s, DType::f32), op, DType::f32);
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(a, b, BinaryOp::add); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(a, b, BinaryOp::sub); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(a, b, BinaryOp::mul); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(a, b, BinaryOp::div); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary_op(a, b, BinaryOp::pow); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(a, b, BinaryOp::maximum); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op(a, b, BinaryOp::minimum); }
Tensor add(const Tensor& a, double s) { return binary_scalar(a, s, BinaryOp::add); }
Tensor sub(const Tensor& a, double s) { return binary_scalar(a, s, BinaryOp::sub); }
Tensor mul(const Tensor& a, double s) { return binary_scalar(a, s, BinaryOp::mul); }
Tensor div(const Tensor& a, double s) { return binary_scalar(a, s, BinaryOp::div); }
Tensor pow(const Tensor& a, double s) { return binary_scalar(a, s, BinaryOp::pow); }

// --- comparisons and where ---------------------------------------------------------------------------------
namespace {
enum class Cmp { eq, ne, lt, le, gt, ge };

Tensor compare(const Tensor& a, const Tensor& b, Cmp cmp, std::string_view name) {
  detail::check_defined(a, name);
  detail::check_defined(b, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, DType::u8);
  const Tensor ab = a.broadcast_to(shape), bb = b.broadcast_to(shape);
  const DType ta = a.dtype(), tb = b.dtype();
  detail::StridedLoop<3> loop(shape, {detail::byte_strides(out), detail::byte_strides(ab), detail::byte_strides(bb)});
  loop.run({static_cast<std::byte*>(out.data()), const_cast<std::byte*>(static_cast<const std::byte*>(ab.data())),
            const_cast<std::byte*>(static_cast<const std::byte*>(bb.data()))},
           [&](auto p, auto st, int64_t len) {
             for (int64_t i = 0; i < len; ++i) {
               const double x = detail::load_element(p[1] + i * st[1], ta);
               const double y = detail::load_element(p[2] + i * st[2], tb);
               bool r = false;
               switch (cmp) {
                 case Cmp::eq: r = x == y; break;
                 case Cmp::ne: r = x != y; break;
                 case Cmp::lt: r = x < y; break;
                 case Cmp::le: r = x <= y; break;
                 case Cmp::gt: r = x > y; break;
                 case Cmp::ge: r = x >= y; break;
               }
               *reinterpret_cast<uint8_t*>(p[0] + i * st[0]) = r ? 1 : 0;
             }
           });
  return out;
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::eq, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::ne, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::lt, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::le, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::gt, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(a, b, Cmp::ge, "ge"); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined(cond, "where");
  detail::check_defined(a, "where");
  detail::check_defined(b, "where");
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  const DType out_type = promote_types(a.dtype(), b.dtype());
  Tensor out = Tensor::empty(shape, out_type);
  const Tensor cb = cond.broadcast_to(shape), ab = a.broadcast_to(shape), bb = b.broadcast_to(shape);
  const DType tc = cond.dtype(), ta = a.dtype(), tb = b.dtype();
  detail::StridedLoop<4> loop(shape, {detail::byte_strides(out), detail::byte_strides(cb), detail::byte_strides(ab),
                                      detail::byte_strides(bb)});
  auto mut = [](const Tensor& t) { return const_cast<std::byte*>(static_cast<const std::byte*>(t.data())); };
  loop.run({static_cast<std::byte*>(out.data()), mut(cb), mut(ab), mut(bb)}, [&](auto p, auto st, int64_t len) {
    for (int64_t i = 0; i < len; ++i) {
      const bool c = detail::load_element(p[1] + i * st[1], tc) != 0.0;
      const double v = c ? detail::load_element(p[2] + i * st[2], ta) : detail::load_element(p[3] + i * st[3], tb);
      detail::store_element(p[0] + i * st[0], out_type, v);
    }
  });
  return out;
}

// --- unary math ------------------------------------------------------------------------------------------
namespace detail {
// Applies a vector-kernel unary op: f32 contiguous directly, other float dtypes through f32.
Tensor unary_float(const Tensor& x, UnaryOp op, std::string_view name) {
  check_defined(x, name);
  check_floating(x, name);
  const Tensor in = f32_contiguous(x);
  Tensor out = Tensor::empty(x.shape(), DType::f32);
  const auto& k = kernels::vector_kernels();
  const float* pi = in.data_as<float>();
  float* po = out.data_as<float>();
  parallel_elements(out.numel(), [&](int64_t s, int64_t e) { k.unary[static_cast<int>(op)](pi + s, po + s, e - s); });
  return out.to(x.dtype());
}
}  // namespace detail

namespace {
// Integer inputs of sqrt/exp/log are computed in f32, as NumPy gives a float for them.
Tensor unary_math(const Tensor& x, UnaryOp op, std::string_view name) {
  detail::check_defined(x, name);
  return detail::unary_float(is_floating(x.dtype()) ? x : x.to(DType::f32), op, name);
}

Tensor unary_integer(const Tensor& x, bool negate) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  out.copy_from(x);
  auto* p = static_cast<std::byte*>(out.data());
  for (int64_t i = 0, n = out.numel(); i < n; ++i) {
    const double v = detail::load_element(p + i * out.element_size(), x.dtype());
    detail::store_wrapped(p + i * out.element_size(), x.dtype(), negate ? -v : std::fabs(v));
  }
  return out;
}
}  // namespace

Tensor neg(const Tensor& a) {
  detail::check_defined(a, "neg");
  return is_floating(a.dtype()) ? detail::unary_float(a, UnaryOp::neg, "neg") : unary_integer(a, true);
}
Tensor abs(const Tensor& a) {
  detail::check_defined(a, "abs");
  return is_floating(a.dtype()) ? detail::unary_float(a, UnaryOp::abs, "abs") : unary_integer(a, false);
}
Tensor sqrt(const Tensor& a) { return unary_math(a, UnaryOp::sqrt, "sqrt"); }
Tensor exp(const Tensor& a) { return unary_math(a, UnaryOp::exp, "exp"); }
Tensor log(const Tensor& a) { return unary_math(a, UnaryOp::log, "log"); }

}  // namespace bitnet
