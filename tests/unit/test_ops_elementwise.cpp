#include <bitnet/ops.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "test_util.h"

namespace bitnet {
namespace {

using test::at_broadcast;
using test::for_each_index;

// Random broadcast-compatible shape pairs, including size-1 dims, 0-d and different ranks.
std::pair<Shape, Shape> random_shapes(std::mt19937& rng) {
  std::uniform_int_distribution<int> rank(0, 4), dim(1, 6), coin(0, 3);
  const int r = rank(rng);
  Shape full(static_cast<size_t>(r));
  for (auto& d : full) d = dim(rng);
  Shape a = full, b = full;
  for (size_t i = 0; i < full.size(); ++i) {
    if (coin(rng) == 0) a[i] = 1;
    else if (coin(rng) == 0) b[i] = 1;
  }
  std::uniform_int_distribution<size_t> drop(0, full.size());
  b.erase(b.begin(), b.begin() + static_cast<int64_t>(drop(rng)));  // fewer leading dims
  return {a, b};
}

// Optionally makes a non-contiguous tensor with the same values (a transposed copy, transposed back).
Tensor maybe_strided(const Tensor& t, std::mt19937& rng) {
  if (t.ndim() < 2 || std::uniform_int_distribution<int>(0, 1)(rng) == 0) return t;
  return t.transpose(0, -1).contiguous().transpose(0, -1);
}

struct BinaryCase {
  const char* name;
  Tensor (*op)(const Tensor&, const Tensor&);
  double (*ref)(double, double);
};

const BinaryCase kBinaryCases[] = {
    {"add", add, [](double a, double b) { return a + b; }},
    {"sub", sub, [](double a, double b) { return a - b; }},
    {"mul", mul, [](double a, double b) { return a * b; }},
    {"div", div, [](double a, double b) { return a / b; }},
    {"pow", pow, [](double a, double b) { return std::pow(std::fabs(a), b); }},
    {"maximum", maximum, [](double a, double b) { return std::max(a, b); }},
    {"minimum", minimum, [](double a, double b) { return std::min(a, b); }},
};

TEST(Elementwise, BinaryOpsMatchNaiveReferenceWithBroadcasting) {
  std::mt19937 rng(42);
  for (const auto& c : kBinaryCases) {
    for (int trial = 0; trial < 60; ++trial) {
      auto [sa, sb] = random_shapes(rng);
      if (trial % 2) std::swap(sa, sb);
      Tensor a = maybe_strided(test::random_tensor(sa, rng), rng);
      Tensor b = maybe_strided(test::random_tensor(sb, rng, 0.5f, 2.0f), rng);
      if (std::string(c.name) == "pow") a = abs(a);
      Tensor out = c.op(a, b);
      ASSERT_EQ(out.shape(), broadcast_shapes(sa, sb)) << c.name;
      for_each_index(out.shape(), [&](const std::vector<int64_t>& idx) {
        const double want = static_cast<float>(c.ref(at_broadcast(a, idx), at_broadcast(b, idx)));
        ASSERT_NEAR(out.at(std::span<const int64_t>(idx)), want, 2e-7 * std::fabs(want) + 1e-30)
            << c.name << " " << shape_str(sa) << " " << shape_str(sb);
      });
    }
  }
}

TEST(Elementwise, LargeContiguousFastPathsAgreeWithReference) {
  std::mt19937 rng(3);
  const Shape shape = {3, 70001};  // > the parallel threshold, odd length
  Tensor a = test::random_tensor(shape, rng), b = test::random_tensor(shape, rng, 0.5f, 2.0f);
  Tensor row = test::random_tensor({70001}, rng);
  const Tensor outs[] = {add(a, b), mul(a, 3.0), sub(a, row), div(a, b)};
  for (int64_t i = 0; i < shape[1]; i += 997) {
    for (int64_t r = 0; r < 3; ++r) {
      EXPECT_EQ(outs[0].at({r, i}), static_cast<float>(a.at({r, i}) + b.at({r, i})));
      EXPECT_EQ(outs[1].at({r, i}), static_cast<float>(a.at({r, i}) * 3.0));
      EXPECT_EQ(outs[2].at({r, i}), static_cast<float>(a.at({r, i}) - row.at({i})));
      EXPECT_EQ(outs[3].at({r, i}), static_cast<float>(a.at({r, i}) / b.at({r, i})));
    }
  }
}

TEST(Elementwise, TypePromotionAndScalars) {
  Tensor i = Tensor::arange(4, DType::i32);
  Tensor h = Tensor::full({4}, 0.5, DType::f16);
  EXPECT_EQ(add(i, h).dtype(), DType::f16);
  EXPECT_EQ(add(h, Tensor::full({4}, 1, DType::bf16)).dtype(), DType::f32);
  EXPECT_EQ(div(i, i).dtype(), DType::f32);
  EXPECT_EQ(add(i, 2.0).dtype(), DType::i32);
  EXPECT_EQ(add(i, 2.0).at({3}), 5);
  EXPECT_EQ(add(i, 0.5).dtype(), DType::f32);
  EXPECT_EQ(mul(h, 3.0).dtype(), DType::f16);
  EXPECT_EQ(mul(h, 3.0).at({0}), 1.5);
  // Integer arithmetic wraps as NumPy's does.
  Tensor u = Tensor::full({1}, 250, DType::u8);
  EXPECT_EQ(add(u, 10.0).at({0}), 4);
  EXPECT_EQ(neg(Tensor::full({1}, -128, DType::i8)).at({0}), -128);
  EXPECT_EQ(abs(Tensor::full({1}, -5, DType::i32)).at({0}), 5);
  EXPECT_EQ((Tensor::arange(3) * 2.0 + 1.0).at({2}), 5.0);
  EXPECT_EQ(sqrt(Tensor::full({1}, 9, DType::i32)).dtype(), DType::f32);
}

TEST(Elementwise, NaNPropagatesThroughMaximumAndMinimum) {
  Tensor a = Tensor::from_vector({1.0f, std::nanf(""), 3.0f}, {3});
  Tensor b = Tensor::from_vector({std::nanf(""), 2.0f, 1.0f}, {3});
  for (const Tensor& r : {maximum(a, b), minimum(a, b)}) {
    EXPECT_TRUE(std::isnan(r.at({0})));
    EXPECT_TRUE(std::isnan(r.at({1})));
  }
  EXPECT_EQ(maximum(a, b).at({2}), 3.0);
  EXPECT_EQ(minimum(a, b).at({2}), 1.0);
}

TEST(Elementwise, ComparisonsAndWhere) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 40; ++trial) {
    auto [sa, sb] = random_shapes(rng);
    Tensor a = test::random_tensor(sa, rng).to(DType::i32);  // small integers make ties likely
    Tensor b = test::random_tensor(sb, rng).to(DType::i32);
    Tensor l = lt(a, b), e = eq(a, b), g = ge(a, b);
    EXPECT_EQ(l.dtype(), DType::u8);
    Tensor w = where(l, a, mul(b, 10.0));
    for_each_index(l.shape(), [&](const std::vector<int64_t>& idx) {
      const double x = at_broadcast(a, idx), y = at_broadcast(b, idx);
      const std::span<const int64_t> s(idx);
      ASSERT_EQ(l.at(s), x < y);
      ASSERT_EQ(e.at(s), x == y);
      ASSERT_EQ(g.at(s), x >= y);
      ASSERT_EQ(w.at(s), x < y ? x : 10 * y);
    });
  }
  EXPECT_THROW(where(Tensor::zeros({2}), Tensor::zeros({3}), Tensor::zeros({2})), Error);
}

TEST(Elementwise, MismatchedShapesThrowWithBothShapes) {
  try {
    add(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}));
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[add] shapes [2, 3] and [3, 2] do not broadcast (dimension 0: 2 vs 3)");
  }
  EXPECT_THROW(add(Tensor(), Tensor::zeros({1})), Error);
}

}  // namespace
}  // namespace bitnet
