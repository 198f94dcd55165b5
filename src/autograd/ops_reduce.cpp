// Sum and mean over axes; the backward spreads the gradient back over the reduced axes.
#include <bitnet/autograd.h>

#include <algorithm>

namespace bitnet::autograd {

namespace {
// The result shape with the reduced axes kept as size 1, and how many elements each output summed.
Shape kept_shape(const Shape& shape, const Axes& axes, int64_t& count, std::string_view op) {
  const auto nd = static_cast<int64_t>(shape.size());
  std::vector<bool> reduced(shape.size(), axes.empty());
  for (int64_t a : axes) {
    const int64_t ax = a < 0 ? a + nd : a;
    BITNET_CHECK(ax >= 0 && ax < nd, "[{}] axis {} is out of range for a {}-d tensor", op, a, nd);
    reduced[static_cast<size_t>(ax)] = true;
  }
  Shape kept = shape;
  count = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    if (reduced[d]) {
      count *= shape[d];
      kept[d] = 1;
    }
  return kept;
}
}  // namespace

Var sum(const Var& x, const Axes& axes, bool keepdims) {
  int64_t count = 0;
  const Shape in_shape = x.shape();
  const Shape kept = kept_shape(in_shape, axes, count, "sum");
  return make_result(bitnet::sum(x.value(), axes, keepdims), "sum", {x}, [in_shape, kept](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(kept).broadcast_to(in_shape).contiguous()};
  });
}

Var mean(const Var& x, const Axes& axes, bool keepdims) {
  int64_t count = 0;
  const Shape in_shape = x.shape();
  const Shape kept = kept_shape(in_shape, axes, count, "mean");
  const double inv = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
  return make_result(bitnet::mean(x.value(), axes, keepdims), "mean", {x}, [in_shape, kept, inv](const Tensor& g) {
    return std::vector<Tensor>{bitnet::mul(g.reshape(kept), inv).broadcast_to(in_shape).contiguous()};
  });
}

}  // namespace bitnet::autograd
