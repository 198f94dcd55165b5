// The straight-through estimator: the forward sees the quantized value, the backward passes the gradient
// through unchanged (also outside the clipping range: BitNet's STE is not a clipped one).
#include <bitnet/autograd.h>

namespace bitnet::autograd {

Var straight_through(const Var& x, const Tensor& quantized, float lambda) {
  BITNET_CHECK(quantized.shape() == x.shape(), "[straight_through] quantized shape {} differs from x's {}",
               shape_str(quantized.shape()), shape_str(x.shape()));
  BITNET_CHECK(lambda >= 0.0f && lambda <= 1.0f, "[straight_through] lambda must be in [0, 1], got {}", lambda);
  // lambda == 1 takes the quantized values as they are, so the forward is exactly Q(x) (no x + (q - x) rounding).
  Tensor value = lambda == 1.0f ? quantized.to(DType::f32).contiguous()
                                : bitnet::add(x.value(), bitnet::mul(bitnet::sub(quantized, x.value()), lambda));
  return make_result(std::move(value), "straight_through", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

}  // namespace bitnet::autograd
