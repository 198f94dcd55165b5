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

namespace bitnet::autograd {

Var linear(const Var& x, const Var& w) {
  BITNET_CHECK(w.ndim() == 2, "[linear] weight must be [out, in], got {}", shape_str(w.shape()));
  BITNET_CHECK(x.ndim() >= 1 && x.size(-1) == w.size(1), "[linear] input {} does not end in in_features = {}",
               shape_str(x.shape()), w.size(1));
  const int64_t in = w.size(1), out = w.size(0);
  // Every leading dim folds into rows, so one GEMM serves any batch shape and W^T is read as a view.
  const Tensor x2 = x.value().contiguous().reshape({-1, in});
  const Tensor vw = w.value();
  Shape out_shape = x.shape();
  out_shape.back() = out;
  const Shape x_shape = x.shape();
  const bool gx = x.requires_grad(), gw = w.requires_grad();
  return make_result(bitnet::matmul(x2, vw.t()).reshape(out_shape), "linear", {x, w},
                     [x2, vw, x_shape, out, gx, gw](const Tensor& g) {
                       const Tensor g2 = g.contiguous().reshape({-1, out});
                       return std::vector<Tensor>{gx ? bitnet::matmul(g2, vw).reshape(x_shape) : Tensor(),
                                                  gw ? bitnet::matmul(g2.t(), x2) : Tensor()};
                     });
}

}  // namespace bitnet::autograd
