// Shape ops. Results are contiguous so later ops (BLAS, row kernels) read them without another copy.
#include <bitnet/autograd.h>

namespace bitnet::autograd {

Var reshape(const Var& x, const Shape& shape) {
  const Shape in_shape = x.shape();
  return make_result(x.value().reshape(shape), "reshape", {x}, [in_shape](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
}

Var transpose(const Var& x, int64_t dim0, int64_t dim1) {
  return make_result(x.value().transpose(dim0, dim1).contiguous(), "transpose", {x}, [dim0, dim1](const Tensor& g) {
    return std::vector<Tensor>{g.transpose(dim0, dim1).contiguous()};
  });
}

Var broadcast_to(const Var& x, const Shape& shape) {
  const Shape in_shape = x.shape();
  return make_result(x.value().broadcast_to(shape).contiguous(), "broadcast_to", {x},
                     [in_shape](const Tensor& g) { return std::vector<Tensor>{sum_to(g, in_shape)}; });
}

}  // namespace bitnet::autograd
