// Autograd: every op's backward against central finite differences on random shapes, forward values of the
// ops that are not plain bitnet ops against naive loops, and the engine's accumulation rules.
#include <bitnet/autograd.h>
#include <gtest/gtest.h>

#include <cmath>

#include "grad_check.h"

namespace bitnet::test {
namespace {

using autograd::Var;
using Vars = std::vector<Var>;

TEST(Autograd, BroadcastingArithmetic) {
  std::mt19937 rng(1);
  const std::vector<std::pair<Shape, Shape>> shapes = {{{3, 4}, {3, 4}}, {{3, 1, 4}, {2, 4}}, {{5}, {2, 3, 1}},
                                                       {{2, 3}, {}}};
  for (const auto& [sa, sb] : shapes) {
    const std::string tag = shape_str(sa) + " with " + shape_str(sb);
    check_gradients([](const Vars& v) { return v[0] + v[1]; }, {random_tensor(sa, rng), random_tensor(sb, rng)}, rng,
                    {}, "add " + tag);
    check_gradients([](const Vars& v) { return v[0] - v[1]; }, {random_tensor(sa, rng), random_tensor(sb, rng)}, rng,
                    {}, "sub " + tag);
    check_gradients([](const Vars& v) { return v[0] * v[1]; }, {random_tensor(sa, rng), random_tensor(sb, rng)}, rng,
                    {}, "mul " + tag);
    check_gradients([](const Vars& v) { return v[0] / v[1]; },
                    {random_tensor(sa, rng), random_tensor(sb, rng, 0.5f, 2.0f)}, rng, {}, "div " + tag);
  }
}

TEST(Autograd, UnaryArithmetic) {
  std::mt19937 rng(2);
  const Shape s{3, 5};
  check_gradients([](const Vars& v) { return v[0] * 3.0 + 1.5; }, {random_tensor(s, rng)}, rng, {}, "scalar");
  check_gradients([](const Vars& v) { return -v[0]; }, {random_tensor(s, rng)}, rng, {}, "neg");
  check_gradients([](const Vars& v) { return autograd::pow(v[0], 3.0); }, {random_tensor(s, rng, 0.2f, 2.0f)}, rng, {},
                  "pow");
  check_gradients([](const Vars& v) { return autograd::exp(v[0]); }, {random_tensor(s, rng)}, rng, {}, "exp");
  check_gradients([](const Vars& v) { return autograd::log(v[0]); }, {random_tensor(s, rng, 0.3f, 3.0f)}, rng, {},
                  "log");
  check_gradients([](const Vars& v) { return autograd::sqrt(v[0]); }, {random_tensor(s, rng, 0.3f, 3.0f)}, rng, {},
                  "sqrt");
}

TEST(Autograd, ShapeOps) {
  std::mt19937 rng(3);
  check_gradients([](const Vars& v) { return autograd::reshape(v[0], {4, -1}); }, {random_tensor({2, 3, 4}, rng)}, rng,
                  {}, "reshape");
  check_gradients([](const Vars& v) { return autograd::transpose(v[0], 0, 2) * v[1]; },
                  {random_tensor({2, 3, 4}, rng), random_tensor({4, 3, 2}, rng)}, rng, {}, "transpose");
  check_gradients([](const Vars& v) { return autograd::broadcast_to(v[0], {2, 3, 4}); }, {random_tensor({3, 1}, rng)},
                  rng, {}, "broadcast_to");
}

TEST(Autograd, Reductions) {
  std::mt19937 rng(4);
  const Tensor x = random_tensor({2, 3, 4}, rng);
  for (const Axes& axes : std::vector<Axes>{{}, {0}, {-1}, {0, 2}})
    for (bool keep : {false, true}) {
      const std::string tag = fmt::format("axes {} keepdims {}", axes, keep);
      check_gradients([&](const Vars& v) { return autograd::sum(v[0], axes, keep); }, {x}, rng, {}, "sum " + tag);
      check_gradients([&](const Vars& v) { return autograd::mean(v[0], axes, keep); }, {x}, rng, {}, "mean " + tag);
    }
}

TEST(Autograd, MatmulWithBroadcastBatches) {
  std::mt19937 rng(5);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {4, 5}}, {{2, 3, 4}, {4, 2}}, {{2, 1, 3, 4}, {3, 4, 2}}, {{1, 5}, {5, 1}}};
  for (const auto& [sa, sb] : shapes)
    check_gradients([](const Vars& v) { return autograd::matmul(v[0], v[1]); },
                    {random_tensor(sa, rng), random_tensor(sb, rng)}, rng, {},
                    "matmul " + shape_str(sa) + " @ " + shape_str(sb));
  // The transposed view path (BLAS reads it as a transposed operand).
  check_gradients([](const Vars& v) { return autograd::matmul(v[0], autograd::transpose(v[1], 0, 1)); },
                  {random_tensor({3, 4}, rng), random_tensor({6, 4}, rng)}, rng, {}, "matmul x W^T");
  EXPECT_THROW(autograd::matmul(Var(Tensor::ones({3})), Var(Tensor::ones({3, 2}))), Error);
  check_gradients([](const Vars& v) { return autograd::linear(v[0], v[1]); },
                  {random_tensor({2, 3, 4}, rng), random_tensor({5, 4}, rng)}, rng, {}, "linear");
  EXPECT_THROW(autograd::linear(Var(Tensor::ones({2, 3})), Var(Tensor::ones({3, 2}))), Error);
}

TEST(Autograd, Activations) {
  std::mt19937 rng(6);
  const Shape s{4, 7};
  check_gradients([](const Vars& v) { return autograd::relu(v[0]); }, {random_away_from_zero(s, rng)}, rng, {}, "relu");
  check_gradients([](const Vars& v) { return autograd::relu2(v[0]); }, {random_away_from_zero(s, rng)}, rng, {},
                  "relu2");
  check_gradients([](const Vars& v) { return autograd::silu(v[0]); }, {random_tensor(s, rng, -4, 4)}, rng, {}, "silu");
  check_gradients([](const Vars& v) { return autograd::sigmoid(v[0]); }, {random_tensor(s, rng, -4, 4)}, rng, {},
                  "sigmoid");
}

TEST(Autograd, SoftmaxAndLogSoftmax) {
  std::mt19937 rng(7);
  for (int64_t axis : {-1, 0, 1}) {
    const Tensor x = random_tensor({3, 5, 4}, rng, -3, 3);
    check_gradients([axis](const Vars& v) { return autograd::softmax(v[0], axis); }, {x}, rng, {},
                    fmt::format("softmax axis {}", axis));
    check_gradients([axis](const Vars& v) { return autograd::log_softmax(v[0], axis); }, {x}, rng, {},
                    fmt::format("log_softmax axis {}", axis));
  }
}

TEST(Autograd, RmsNorm) {
  std::mt19937 rng(8);
  check_gradients([](const Vars& v) { return autograd::rms_norm(v[0], v[1], 1e-5f); },
                  {random_tensor({2, 3, 8}, rng), random_tensor({8}, rng, 0.5f, 1.5f)}, rng, {}, "rms_norm with gain");
  check_gradients([](const Vars& v) { return autograd::rms_norm(v[0], Var(), 1e-5f); }, {random_tensor({5, 6}, rng)},
                  rng, {}, "rms_norm without gain");
  EXPECT_THROW(autograd::rms_norm(Var(Tensor::ones({2, 4})), Var(Tensor::ones({3}))), Error);
}

TEST(Autograd, CrossEntropyValueAndGradient) {
  std::mt19937 rng(9);
  const Tensor logits = random_tensor({2, 3, 6}, rng, -3, 3);
  Tensor targets = Tensor::zeros({2, 3}, DType::i32);
  const int32_t ids[6] = {0, 5, 2, -1, 3, 3};  // one ignored position
  for (int i = 0; i < 6; ++i) targets.data_as<int32_t>()[i] = ids[i];

  // Value against a naive double computation.
  double expected = 0.0;
  const std::vector<float> lv = logits.to_vector();
  for (int r = 0; r < 6; ++r) {
    if (ids[r] < 0) continue;
    double s = 0.0;
    for (int c = 0; c < 6; ++c) s += std::exp(static_cast<double>(lv[r * 6 + c]));
    expected += std::log(s) - lv[r * 6 + ids[r]];
  }
  expected /= 5.0;
  EXPECT_NEAR(autograd::cross_entropy(Var(logits), targets).item(), expected, 1e-5);

  check_gradients([&](const Vars& v) { return autograd::cross_entropy(v[0], targets); }, {logits}, rng, {},
                  "cross_entropy");
  // The ignored row gets exactly zero gradient.
  Var lv_param = Var::parameter(logits);
  autograd::cross_entropy(lv_param, targets).backward();
  for (int c = 0; c < 6; ++c) EXPECT_EQ(lv_param.grad().at({1, 0, c}), 0.0);

  targets.data_as<int32_t>()[0] = 6;
  EXPECT_THROW(autograd::cross_entropy(Var(logits), targets), Error);
  EXPECT_THROW(autograd::cross_entropy(Var(logits), Tensor::full({2, 3}, -1, DType::i32)), Error);
}

TEST(Autograd, EmbeddingScatterAdds) {
  std::mt19937 rng(10);
  Tensor ids = Tensor::zeros({2, 3}, DType::i32);
  const int32_t v[6] = {4, 1, 4, 0, 2, 4};  // token 4 repeats: its gradient row is a sum
  for (int i = 0; i < 6; ++i) ids.data_as<int32_t>()[i] = v[i];
  const Tensor w = random_tensor({5, 3}, rng);
  const Var out = autograd::embedding(Var(w), ids);
  ASSERT_EQ(out.shape(), (Shape{2, 3, 3}));
  EXPECT_EQ(out.value().at({1, 1, 2}), w.at({2, 2}));
  check_gradients([&](const Vars& x) { return autograd::embedding(x[0], ids); }, {w}, rng, {}, "embedding");
  ids.data_as<int32_t>()[0] = 5;
  EXPECT_THROW(autograd::embedding(Var(w), ids), Error);
}

TEST(Autograd, RopeHalfSplit) {
  std::mt19937 rng(11);
  const Tensor x = random_tensor({2, 3, 2, 8}, rng);
  const int64_t start = 5;
  const Var y = autograd::rope(Var(x), 10000.0, start);
  // Forward against the formula: element i pairs with i + D/2, angle (start + t) * theta^(-2i/D).
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t i = 0; i < 4; ++i) {
      const double a = static_cast<double>(start + t) * std::pow(10000.0, -2.0 * i / 8.0);
      const double x1 = x.at({1, t, 1, i}), x2 = x.at({1, t, 1, i + 4});
      EXPECT_NEAR(y.value().at({1, t, 1, i}), x1 * std::cos(a) - x2 * std::sin(a), 1e-5);
      EXPECT_NEAR(y.value().at({1, t, 1, i + 4}), x2 * std::cos(a) + x1 * std::sin(a), 1e-5);
    }
  check_gradients([](const Vars& v) { return autograd::rope(v[0], 500.0, 3); }, {x}, rng, {}, "rope");
  EXPECT_THROW(autograd::rope(Var(Tensor::ones({1, 2, 1, 3})), 1e4), Error);
}

// Naive causal GQA attention in double.
std::vector<double> naive_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t b = q.size(0), hq = q.size(1), t = q.size(2), d = q.size(3), group = hq / k.size(1);
  std::vector<double> out;
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t h = 0; h < hq; ++h)
      for (int64_t i = 0; i < t; ++i) {
        std::vector<double> s(static_cast<size_t>(i + 1));
        double mx = -1e300, total = 0.0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int64_t c = 0; c < d; ++c) dot += q.at({bi, h, i, c}) * k.at({bi, h / group, j, c});
          s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        for (auto& e : s) total += (e = std::exp(e - mx));
        for (int64_t c = 0; c < d; ++c) {
          double o = 0.0;
          for (int64_t j = 0; j <= i; ++j) o += s[static_cast<size_t>(j)] / total * v.at({bi, h / group, j, c});
          out.push_back(o);
        }
      }
  return out;
}

TEST(Autograd, CausalAttentionGroupedQuery) {
  std::mt19937 rng(12);
  for (auto [hq, hkv] : std::vector<std::pair<int64_t, int64_t>>{{2, 2}, {4, 2}, {3, 1}}) {
    const Tensor q = random_tensor({2, hq, 4, 3}, rng), k = random_tensor({2, hkv, 4, 3}, rng),
                 v = random_tensor({2, hkv, 4, 3}, rng);
    const std::vector<float> got = autograd::causal_attention(Var(q), Var(k), Var(v)).value().to_vector();
    const std::vector<double> want = naive_attention(q, k, v);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << "element " << i;
    check_gradients([](const Vars& x) { return autograd::causal_attention(x[0], x[1], x[2]); }, {q, k, v}, rng, {},
                    fmt::format("attention Hq={} Hkv={}", hq, hkv));
  }
  EXPECT_THROW(autograd::causal_attention(Var(Tensor::ones({1, 3, 2, 4})), Var(Tensor::ones({1, 2, 2, 4})),
                                          Var(Tensor::ones({1, 2, 2, 4}))),
               Error);
}

TEST(Autograd, CausalAttentionSeqMajorLayoutIsTheTransposedProblem) {
  // [B, T, H, D] in and out gives the [B, H, T, D] result transposed, and the same gradients transposed.
  std::mt19937 rng(15);
  const Tensor q = random_tensor({2, 4, 5, 3}, rng), k = random_tensor({2, 2, 5, 3}, rng),
               v = random_tensor({2, 2, 5, 3}, rng), g = random_tensor({2, 4, 5, 3}, rng);
  const Var qa = Var::parameter(q), ka = Var::parameter(k), va = Var::parameter(v);
  autograd::causal_attention(qa, ka, va).backward(g);
  const Var qb = Var::parameter(q.transpose(1, 2).contiguous()), kb = Var::parameter(k.transpose(1, 2).contiguous()),
            vb = Var::parameter(v.transpose(1, 2).contiguous());
  const Var ob = autograd::causal_attention(qb, kb, vb, /*seq_major=*/true);
  ob.backward(g.transpose(1, 2).contiguous());
  const Var oa = autograd::causal_attention(Var(q), Var(k), Var(v));
  EXPECT_EQ(ob.value().to_vector(), oa.value().transpose(1, 2).contiguous().to_vector());
  EXPECT_EQ(qb.grad().to_vector(), qa.grad().transpose(1, 2).contiguous().to_vector());
  EXPECT_EQ(kb.grad().to_vector(), ka.grad().transpose(1, 2).contiguous().to_vector());
  EXPECT_EQ(vb.grad().to_vector(), va.grad().transpose(1, 2).contiguous().to_vector());
  check_gradients([](const Vars& x) { return autograd::causal_attention(x[0], x[1], x[2], true); },
                  {qb.value(), kb.value(), vb.value()}, rng, {}, "attention seq-major");
  EXPECT_THROW(autograd::causal_attention(Var(Tensor::ones({1, 2, 3, 4})), Var(Tensor::ones({1, 3, 2, 4})),
                                          Var(Tensor::ones({1, 3, 2, 4})), true),
               Error);
}

TEST(Autograd, StraightThroughPassesGradientUnchanged) {
  std::mt19937 rng(13);
  const Tensor x = random_tensor({3, 4}, rng);
  Tensor q = x.clone();
  for (int64_t i = 0; i < q.numel(); ++i) q.data_as<float>()[i] = std::nearbyint(q.data_as<float>()[i]);
  const Tensor r = random_tensor({3, 4}, rng);
  for (float lambda : {1.0f, 0.25f}) {
    Var xv = Var::parameter(x);
    Var y = autograd::straight_through(xv, q, lambda);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float xi = x.data_as<float>()[i], qi = q.data_as<float>()[i];
      EXPECT_EQ(y.value().data_as<float>()[i], lambda == 1.0f ? qi : xi + (qi - xi) * lambda);
    }
    y.backward(r);
    // The STE definition: d y / d x is exactly the identity, whatever the rounding did.
    EXPECT_EQ(xv.grad().to_vector(), r.to_vector());
  }
  EXPECT_THROW(autograd::straight_through(Var(x), q, 1.5f), Error);
}

TEST(Autograd, EngineAccumulatesOverPathsAndCalls) {
  Var x = Var::parameter(Tensor::from_vector({1.0f, -2.0f, 3.0f}, {3}));
  // x used twice: d sum(x*x + x) / dx = 2x + 1.
  Var loss = autograd::sum(x * x + x);
  loss.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{3.0f, -3.0f, 7.0f}));
  // A second backward adds (gradient accumulation); zero_grad clears.
  autograd::sum(x * 2.0).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{5.0f, -1.0f, 9.0f}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  // Gradients of two leaves from add() do not share memory (optimizers update them in place).
  Var a = Var::parameter(Tensor::ones({2})), b = Var::parameter(Tensor::ones({2}));
  autograd::sum(a + b).backward();
  EXPECT_NE(a.grad().storage(), b.grad().storage());
}

TEST(Autograd, NoGradAndDetachCutTheGraph) {
  Var x = Var::parameter(Tensor::ones({2}));
  {
    autograd::NoGradGuard guard;
    EXPECT_FALSE(autograd::grad_enabled());
    Var y = x * 3.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_THROW(autograd::sum(y).backward(), Error);
  }
  EXPECT_TRUE(autograd::grad_enabled());
  Var z = autograd::sum(x.detach() * x);
  z.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{1.0f, 1.0f}));  // only the non-detached factor
  EXPECT_THROW((x * 1.0).backward(), Error);                           // not a scalar
}

}  // namespace
}  // namespace bitnet::test
