// Elementwise arithmetic with broadcasting; each backward sums its gradient back to the input's shape.
#include <bitnet/autograd.h>

namespace bitnet::autograd {

namespace B = ::bitnet;

Var add(const Var& a, const Var& b) {
  const Shape sa = a.shape(), sb = b.shape();
  return make_result(B::add(a.value(), b.value()), "add", {a, b}, [sa, sb](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
  });
}

Var sub(const Var& a, const Var& b) {
  const Shape sa = a.shape(), sb = b.shape();
  return make_result(B::sub(a.value(), b.value()), "sub", {a, b}, [sa, sb](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), sum_to(B::neg(g), sb)};
  });
}

Var mul(const Var& a, const Var& b) {
  const Tensor va = a.value(), vb = b.value();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return make_result(B::mul(va, vb), "mul", {a, b}, [va, vb, ga, gb](const Tensor& g) {
    return std::vector<Tensor>{ga ? sum_to(B::mul(g, vb), va.shape()) : Tensor(),
                               gb ? sum_to(B::mul(g, va), vb.shape()) : Tensor()};
  });
}

Var div(const Var& a, const Var& b) {
  const Tensor va = a.value(), vb = b.value();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return make_result(B::div(va, vb), "div", {a, b}, [va, vb, ga, gb](const Tensor& g) {
    // d(a/b)/db = -a / b^2
    return std::vector<Tensor>{
        ga ? sum_to(B::div(g, vb), va.shape()) : Tensor(),
        gb ? sum_to(B::neg(B::div(B::mul(g, va), B::mul(vb, vb))), vb.shape()) : Tensor()};
  });
}

Var add(const Var& a, double s) {
  return make_result(B::add(a.value(), s), "add_scalar", {a}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Var mul(const Var& a, double s) {
  return make_result(B::mul(a.value(), s), "mul_scalar", {a},
                     [s](const Tensor& g) { return std::vector<Tensor>{B::mul(g, s)}; });
}

Var neg(const Var& a) {
  return make_result(B::neg(a.value()), "neg", {a}, [](const Tensor& g) { return std::vector<Tensor>{B::neg(g)}; });
}

Var pow(const Var& a, double exponent) {
  const Tensor va = a.value();
  return make_result(B::pow(va, exponent), "pow", {a}, [va, exponent](const Tensor& g) {
    return std::vector<Tensor>{B::mul(g, B::mul(B::pow(va, exponent - 1.0), exponent))};
  });
}

Var exp(const Var& a) {
  Tensor y = B::exp(a.value());
  return make_result(y, "exp", {a}, [y](const Tensor& g) { return std::vector<Tensor>{B::mul(g, y)}; });
}

Var log(const Var& a) {
  const Tensor va = a.value();
  return make_result(B::log(va), "log", {a}, [va](const Tensor& g) { return std::vector<Tensor>{B::div(g, va)}; });
}

Var sqrt(const Var& a) {
  Tensor y = B::sqrt(a.value());
  return make_result(y, "sqrt", {a}, [y](const Tensor& g) {
    return std::vector<Tensor>{B::div(g, B::mul(y, 2.0))};
  });
}

}  // namespace bitnet::autograd
