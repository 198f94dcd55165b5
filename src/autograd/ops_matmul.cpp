// Matrix product with broadcast batch dims: dA = dC B^T and dB = A^T dC, each summed over the batch dims
// its operand was broadcast along.
#include <bitnet/autograd.h>

namespace bitnet::autograd {

Var matmul(const Var& a, const Var& b) {
  BITNET_CHECK(a.ndim() >= 2 && b.ndim() >= 2,
               "[autograd::matmul] both operands need at least 2 dims (reshape vectors to [1, n]), got {} and {}",
               shape_str(a.shape()), shape_str(b.shape()));
  const Tensor va = a.value(), vb = b.value();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return make_result(bitnet::matmul(va, vb), "matmul", {a, b}, [va, vb, ga, gb](const Tensor& g) {
    return std::vector<Tensor>{
        ga ? sum_to(bitnet::matmul(g, vb.transpose(-2, -1)), va.shape()) : Tensor(),
        gb ? sum_to(bitnet::matmul(va.transpose(-2, -1), g), vb.shape()) : Tensor()};
  });
}

}  // namespace bitnet::autograd
