// Activations, softmax along an axis, and RMSNorm.
#include "kernels/vector.h"
#include "ops/ops_util.h"

namespace bitnet {

using kernels::UnaryOp;

namespace detail {
Tensor unary_float(const Tensor& x, UnaryOp op, std::string_view name);  // elementwise.cpp
}

Tensor relu(const Tensor& x) { return detail::unary_float(x, UnaryOp::relu, "relu"); }
Tensor relu2(const Tensor& x) { return detail::unary_float(x, UnaryOp::relu2, "relu2"); }
Tensor gelu(const Tensor& x) { return detail::unary_float(x, UnaryOp::gelu, "gelu"); }
Tensor silu(const Tensor& x) { return detail::unary_float(x, UnaryOp::silu, "silu"); }
Tensor sigmoid(const Tensor& x) { return detail::unary_float(x, UnaryOp::sigmoid, "sigmoid"); }
Tensor tanh(const Tensor& x) { return detail::unary_float(x, UnaryOp::tanh, "tanh"); }

namespace {
// Applies a row kernel along `axis`: the axis is moved last (a copy unless it already is), rows are
// processed in parallel, and the result is moved back.
template <class RowFn>
Tensor along_axis(const Tensor& x, int64_t axis, std::string_view op, RowFn row_fn) {
  detail::check_defined(x, op);
  detail::check_floating(x, op);
  BITNET_CHECK(x.ndim() > 0, "[{}] expects at least one dimension, got a 0-d tensor", op);
  const int64_t ax = axis < 0 ? axis + x.ndim() : axis;
  BITNET_CHECK(ax >= 0 && ax < x.ndim(), "[{}] axis {} is out of range for a {}-d tensor", op, axis, x.ndim());
  const Tensor moved = detail::f32_contiguous(x.transpose(ax, -1));
  Tensor out = Tensor::empty(moved.shape(), DType::f32);
  const int64_t n = moved.size(-1);
  const int64_t rows = n == 0 ? 0 : moved.numel() / n;
  const float* pi = moved.data_as<float>();
  float* po = out.data_as<float>();
  detail::parallel_rows(rows, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row_fn(pi + r * n, po + r * n, n);
  });
  return out.transpose(ax, -1).to(x.dtype()).contiguous();
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) {
  const auto& k = kernels::vector_kernels();
  return along_axis(x, axis, "softmax", k.softmax_row);
}

Tensor log_softmax(const Tensor& x, int64_t axis) {
  const auto& k = kernels::vector_kernels();
  return along_axis(x, axis, "log_softmax", k.log_softmax_row);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  BITNET_CHECK(eps >= 0.0f, "[rms_norm] eps must be non-negative, got {}", eps);
  Tensor w;
  if (weight.defined()) {
    BITNET_CHECK(weight.ndim() == 1 && x.ndim() > 0 && weight.size(0) == x.size(-1),
                 "[rms_norm] weight must have shape [{}] (the last dim of {}), got {}",
                 x.ndim() > 0 ? x.size(-1) : 0, x.str(), weight.str());
    w = detail::f32_contiguous(weight);
  }
  const float* pw = w.defined() ? w.data_as<float>() : nullptr;
  const auto& k = kernels::vector_kernels();
  return along_axis(x, -1, "rms_norm",
                    [&](const float* in, float* out, int64_t n) { k.rms_norm_row(in, pw, out, n, eps); });
}

Tensor rms_norm(const Tensor& x, float eps) { return rms_norm(x, Tensor(), eps); }

}  // namespace bitnet
