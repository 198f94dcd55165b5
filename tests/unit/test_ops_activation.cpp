#include <bitnet/ops.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "test_util.h"

namespace bitnet {
namespace {

struct ActCase {
  const char* name;
  Tensor (*op)(const Tensor&);
  double (*ref)(double);
};

const ActCase kCases[] = {
    {"relu", relu, [](double x) { return x > 0 ? x : 0.0; }},
    {"relu2", relu2, [](double x) { return x > 0 ? x * x : 0.0; }},
    {"gelu", gelu, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
    {"silu", silu, [](double x) { return x / (1 + std::exp(-x)); }},
    {"sigmoid", sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }},
    {"tanh", tanh, [](double x) { return std::tanh(x); }},
    {"exp", exp, [](double x) { return std::exp(x); }},
};

TEST(Activation, MatchDoublePrecisionReference) {
  std::mt19937 rng(9);
  Tensor x = test::random_tensor({7, 131}, rng, -12.0f, 12.0f);
  for (const auto& c : kCases) {
    for (const Tensor& in : {x, x.t()}) {  // contiguous and transposed
      Tensor y = c.op(in);
      ASSERT_EQ(y.shape(), in.shape());
      test::for_each_index(in.shape(), [&](const std::vector<int64_t>& idx) {
        const std::span<const int64_t> s(idx);
        const double want = c.ref(in.at(s));
        ASSERT_NEAR(y.at(s), want, 4e-7 * std::fabs(want) + 2e-7) << c.name << "(" << in.at(s) << ")";
      });
    }
  }
}

TEST(Activation, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector({-inf, inf, std::nanf(""), 0.0f, -0.0f, 100.0f, -100.0f, 1e-8f}, {8});
  auto v = sigmoid(x).to_vector();
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_TRUE(std::isnan(v[2]));
  v = tanh(x).to_vector();
  EXPECT_EQ(v[0], -1.0f);
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_TRUE(std::isnan(v[2]));
  EXPECT_NEAR(v[7], 1e-8f, 1e-15f);  // no cancellation near zero
  v = silu(x).to_vector();
  EXPECT_EQ(v[5], 100.0f);
  EXPECT_NEAR(v[6], -100.0 * std::exp(-100.0), 1e-40);
  EXPECT_TRUE(std::isnan(relu(x).to_vector()[2]));
  EXPECT_THROW(relu(Tensor::zeros({2}, DType::i32)), Error);
  EXPECT_EQ(gelu(x.to(DType::bf16)).dtype(), DType::bf16);
}

TEST(Activation, SoftmaxAlongEveryAxis) {
  std::mt19937 rng(4);
  Tensor x = test::random_tensor({3, 4, 5}, rng, -30.0f, 30.0f);
  for (int64_t axis : {0, 1, 2, -1}) {
    Tensor s = softmax(x, axis), l = log_softmax(x, axis);
    Tensor moved = x.transpose(axis, -1).contiguous();
    Tensor sm = s.transpose(axis, -1).contiguous(), lm = l.transpose(axis, -1).contiguous();
    const int64_t n = moved.size(-1);
    const auto xv = moved.to_vector(), sv = sm.to_vector(), lv = lm.to_vector();
    for (size_t r = 0; r < xv.size() / static_cast<size_t>(n); ++r) {
      double mx = -1e30, total = 0;
      for (int64_t i = 0; i < n; ++i) mx = std::max<double>(mx, xv[r * n + i]);
      for (int64_t i = 0; i < n; ++i) total += std::exp(xv[r * n + i] - mx);
      for (int64_t i = 0; i < n; ++i) {
        const double p = std::exp(xv[r * n + i] - mx) / total;
        EXPECT_NEAR(sv[r * n + i], p, 1e-6 * p + 1e-12);
        EXPECT_NEAR(lv[r * n + i], std::log(p), 2e-6 * (1 + std::fabs(std::log(p))));
      }
    }
  }
  EXPECT_THROW(softmax(x, 3), Error);
}

TEST(Activation, RmsNormMatchesFormula) {
  std::mt19937 rng(8);
  Tensor x = test::random_tensor({5, 2560}, rng);
  Tensor w = test::random_tensor({2560}, rng);
  Tensor y = rms_norm(x, w, 1e-5f);
  Tensor y0 = rms_norm(x.slice(1, 0, 7), 1e-5f);
  for (int64_t r = 0; r < 5; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < 2560; ++i) ss += x.at({r, i}) * x.at({r, i});
    const double scale = 1 / std::sqrt(ss / 2560 + 1e-5);
    for (int64_t i = 0; i < 2560; i += 37)
      EXPECT_NEAR(y.at({r, i}), x.at({r, i}) * scale * w.at({i}), 1e-5);
    double ss7 = 0;
    for (int64_t i = 0; i < 7; ++i) ss7 += x.at({r, i}) * x.at({r, i});
    EXPECT_NEAR(y0.at({r, 3}), x.at({r, 3}) / std::sqrt(ss7 / 7 + 1e-5), 1e-5);
  }
  EXPECT_THROW(rms_norm(x, Tensor::ones({7})), Error);
}

}  // namespace
}  // namespace bitnet
