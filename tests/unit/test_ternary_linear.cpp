// BitLinear's integer forward (nn/ternary_linear.cpp) against the fake-quantized f32 path it replaces: the
// forward within float rounding of the f32 GEMM, the gradients the same bits (both rebuild the same f32
// quantized operands and run the same GEMMs), on awkward sizes and with leading batch dims.
#include <bitnet/autograd.h>
#include <bitnet/nn.h>
#include <bitnet/qat.h>
#include <gtest/gtest.h>

#include <cmath>

#include "nn/ternary_linear.h"
#include "test_util.h"

namespace bitnet::test {
namespace {

using autograd::Var;

struct Case {
  Shape x_shape;
  int64_t out;
};

TEST(TernaryLinear, MatchesFakeQuantizedPath) {
  std::mt19937 rng(7);
  const nn::BitLinearOptions opts;
  for (const Case& c : {Case{{1, 1}, 1}, Case{{3, 7}, 5}, Case{{2, 65, 300}, 33}, Case{{130, 257}, 17},
                        Case{{4, 9, 512}, 70}, Case{{1, 1000}, 3}}) {
    const int64_t in = c.x_shape.back();
    ASSERT_TRUE(nn::detail::int8_ternary_path(opts, 1.0f, in));
    const Tensor x = random_tensor(c.x_shape, rng);
    const Tensor w = random_tensor({c.out, in}, rng, -0.05f, 0.05f);
    Shape y_shape = c.x_shape;
    y_shape.back() = c.out;
    const Tensor g = random_tensor(y_shape, rng);

    const Var xa = Var::parameter(x), wa = Var::parameter(w);
    const Var ya = nn::detail::int8_ternary_linear(xa, wa);
    ya.backward(g);
    const Var xb = Var::parameter(x), wb = Var::parameter(w);
    const Var yb = autograd::linear(nn::fake_quantize(xb, opts.act_quant, 1.0f),
                                    nn::fake_quantize(wb, opts.weight_quant, 1.0f));
    yb.backward(g);

    ASSERT_EQ(ya.shape(), yb.shape());
    const auto va = ya.value().to_vector(), vb = yb.value().to_vector();
    double peak = 0.0;
    for (float v : vb) peak = std::max(peak, std::fabs(static_cast<double>(v)));
    for (size_t i = 0; i < va.size(); ++i)
      ASSERT_NEAR(va[i], vb[i], 2e-6 * peak + 1e-12) << shape_str(c.x_shape) << " out " << c.out << " at " << i;
    EXPECT_EQ(xa.grad().to_vector(), xb.grad().to_vector()) << shape_str(c.x_shape);
    EXPECT_EQ(wa.grad().to_vector(), wb.grad().to_vector()) << shape_str(c.x_shape);
  }
}

TEST(TernaryLinear, OnlyTheFullyQuantizedBitNetRecipeTakesIt) {
  nn::BitLinearOptions opts;
  EXPECT_TRUE(nn::detail::int8_ternary_path(opts, 1.0f, 2560));
  EXPECT_FALSE(nn::detail::int8_ternary_path(opts, 0.5f, 2560));  // phased-in quantization: x + l (Q(x) - x)
  opts.weight_quant = nn::QuantSpec::ternary(nn::Granularity::per_row);
  EXPECT_FALSE(nn::detail::int8_ternary_path(opts, 1.0f, 2560));
  opts = {};
  opts.act_quant = nn::QuantSpec::symmetric(4, nn::Granularity::per_row);
  EXPECT_FALSE(nn::detail::int8_ternary_path(opts, 1.0f, 2560));
  opts = {};
  opts.act_quant = nn::QuantSpec::symmetric(8, nn::Granularity::per_tensor);
  EXPECT_FALSE(nn::detail::int8_ternary_path(opts, 1.0f, 2560));
}

TEST(TernaryLinear, BitLinearForwardTakesIt) {
  // A BitLinear with its own norm: its output is the integer op's on the normed input, bit for bit.
  std::mt19937 rng(3);
  nn::InitRng init(5);
  nn::BitLinear layer(48, 20, init);
  const Tensor x = random_tensor({6, 48}, rng);
  const Var y = layer.forward(Var(x));
  const Var xn = autograd::rms_norm(Var(x), layer.norm_weight, 1e-5f);
  const Var want = nn::detail::int8_ternary_linear(xn, layer.weight);
  EXPECT_EQ(y.value().to_vector(), want.value().to_vector());
}

}  // namespace
}  // namespace bitnet::test
