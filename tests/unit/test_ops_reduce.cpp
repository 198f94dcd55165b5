#include <bitnet/ops.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "test_util.h"

namespace bitnet {
namespace {

// Naive reference: for each output index, gathers the reduced elements in row-major order.
std::vector<std::vector<double>> gather_groups(const Tensor& x, const std::vector<int64_t>& axes, Shape& out_shape,
                                               bool keepdims) {
  std::vector<bool> red(static_cast<size_t>(x.ndim()), axes.empty());
  for (int64_t a : axes) red[static_cast<size_t>(a < 0 ? a + x.ndim() : a)] = true;
  Shape kept;
  out_shape.clear();
  for (int64_t d = 0; d < x.ndim(); ++d) {
    if (!red[static_cast<size_t>(d)]) kept.push_back(x.shape()[static_cast<size_t>(d)]);
    if (!red[static_cast<size_t>(d)]) out_shape.push_back(x.shape()[static_cast<size_t>(d)]);
    else if (keepdims) out_shape.push_back(1);
  }
  std::vector<std::vector<double>> groups(static_cast<size_t>(shape_numel(kept)));
  test::for_each_index(x.shape(), [&](const std::vector<int64_t>& idx) {
    int64_t flat = 0;
    for (int64_t d = 0; d < x.ndim(); ++d)
      if (!red[static_cast<size_t>(d)]) flat = flat * x.shape()[static_cast<size_t>(d)] + idx[static_cast<size_t>(d)];
    groups[static_cast<size_t>(flat)].push_back(x.at(std::span<const int64_t>(idx)));
  });
  return groups;
}

std::vector<int64_t> random_axes(int64_t ndim, std::mt19937& rng) {
  std::vector<int64_t> axes;
  for (int64_t d = 0; d < ndim; ++d)
    if (std::uniform_int_distribution<int>(0, 1)(rng)) axes.push_back(std::uniform_int_distribution<int>(0, 1)(rng) ? d : d - ndim);
  return axes;
}

TEST(Reduce, AllReductionsMatchNaiveReference) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 80; ++trial) {
    const int64_t rank = std::uniform_int_distribution<int64_t>(1, 4)(rng);
    Shape shape;
    for (int64_t d = 0; d < rank; ++d) shape.push_back(std::uniform_int_distribution<int64_t>(1, 7)(rng));
    Tensor x = test::random_tensor(shape, rng, -3.0f, 5.0f);
    if (trial % 3 == 0 && rank >= 2) x = x.transpose(0, 1);
    const auto axes = random_axes(rank, rng);
    const bool keep = trial % 2 == 0;
    Shape want_shape;
    const auto groups = gather_groups(x, axes, want_shape, keep);
    const Tensor s = sum(x, axes, keep), m = mean(x, axes, keep), v = var(x, axes, keep), v1 = var(x, axes, keep, 1),
                 sd = std(x, axes, keep), lo = min(x, axes, keep), hi = max(x, axes, keep);
    for (const Tensor* t : {&s, &m, &v, &v1, &sd, &lo, &hi}) ASSERT_EQ(t->shape(), want_shape);
    const std::vector<float> sv = s.to_vector(), mv = m.to_vector(), vv = v.to_vector(), v1v = v1.to_vector(),
                             sdv = sd.to_vector(), lov = lo.to_vector(), hiv = hi.to_vector();
    for (size_t g = 0; g < groups.size(); ++g) {
      const auto& e = groups[g];
      double total = 0, mn = e[0], mx = e[0];
      for (double val : e) total += val, mn = std::min(mn, val), mx = std::max(mx, val);
      const double mu = total / static_cast<double>(e.size());
      double ss = 0;
      for (double val : e) ss += (val - mu) * (val - mu);
      const double n = static_cast<double>(e.size());
      EXPECT_NEAR(sv[g], total, 1e-5 * (1 + std::fabs(total)));
      EXPECT_NEAR(mv[g], mu, 1e-6 * (1 + std::fabs(mu)));
      EXPECT_NEAR(vv[g], ss / n, 1e-5 * (1 + ss / n));
      if (e.size() > 1) EXPECT_NEAR(v1v[g], ss / (n - 1), 1e-5 * (1 + ss / n));
      else EXPECT_TRUE(std::isnan(v1v[g]));
      EXPECT_NEAR(sdv[g], std::sqrt(ss / n), 1e-5 * (1 + ss / n));
      EXPECT_EQ(lov[g], static_cast<float>(mn));
      EXPECT_EQ(hiv[g], static_cast<float>(mx));
    }
  }
}

TEST(Reduce, LongRowsSplitAcrossThreadsStayAccurate) {
  // One long row takes the split path; the sum of 1..n is exact in double.
  const int64_t n = 1 << 20;
  Tensor x = Tensor::arange(n);
  EXPECT_EQ(sum(x).item(), static_cast<double>(static_cast<float>(n * (n - 1) / 2.0)));
  EXPECT_EQ(max(x).item(), n - 1);
  EXPECT_EQ(min(x).item(), 0);
  Tensor c = Tensor::full({n}, 0.1);
  EXPECT_NEAR(mean(c).item(), 0.1, 1e-8);  // double accumulation: no drift over 2^20 terms
  EXPECT_NEAR(var(c).item(), 0.0, 1e-12);
}

TEST(Reduce, IntegerSumsAndExtremes) {
  Tensor x = Tensor::arange(10, DType::i32).view({2, 5});
  EXPECT_EQ(sum(x).dtype(), DType::i32);
  EXPECT_EQ(sum(x).item(), 45);
  EXPECT_EQ(sum(x, {1}).at({1}), 35);
  EXPECT_EQ(max(x, {0}).at({4}), 9);
  EXPECT_EQ(min(x.to(DType::u8), {1}, true).shape(), (Shape{2, 1}));
}

TEST(Reduce, NaNAndEmpty) {
  Tensor x = Tensor::from_vector({1, std::nanf(""), 3}, {3});
  EXPECT_TRUE(std::isnan(max(x).item()));
  EXPECT_TRUE(std::isnan(sum(x).item()));
  EXPECT_EQ(argmax(x).item(), 1);  // the first NaN, as NumPy
  Tensor empty = Tensor::zeros({0, 3});
  EXPECT_EQ(sum(empty, {0}).shape(), (Shape{3}));
  EXPECT_EQ(sum(empty, {0}).at({1}), 0);
  EXPECT_TRUE(std::isnan(mean(empty, {0}).at({0})));
  EXPECT_THROW(max(empty, {0}), Error);
  EXPECT_THROW(sum(x, {1}), Error);
  EXPECT_THROW(sum(x, {0, 0}), Error);
}

TEST(Reduce, Argmax) {
  std::mt19937 rng(2);
  Tensor x = test::random_tensor({4, 5, 6}, rng);
  for (int64_t axis : {0, 1, 2, -1}) {
    Tensor a = argmax(x, axis);
    Tensor ak = argmax(x, axis, true);
    EXPECT_EQ(a.dtype(), DType::i32);
    EXPECT_EQ(ak.ndim(), 3);
    std::vector<int64_t> perm;  // the axis moved last, the others in order
    const int64_t ax = axis < 0 ? axis + 3 : axis;
    for (int64_t d = 0; d < 3; ++d)
      if (d != ax) perm.push_back(d);
    perm.push_back(ax);
    Tensor moved = x.permute(perm);
    test::for_each_index(a.shape(), [&](const std::vector<int64_t>& idx) {
      int64_t best = 0;
      std::vector<int64_t> full = idx;
      full.push_back(0);
      double bv = -1e9;
      for (int64_t i = 0; i < moved.size(-1); ++i) {
        full.back() = i;
        const double v = moved.at(std::span<const int64_t>(full));
        if (v > bv) bv = v, best = i;
      }
      ASSERT_EQ(a.at(std::span<const int64_t>(idx)), best);
    });
  }
  EXPECT_EQ(argmax(Tensor::from_vector({1, 5, 5, 2}, {2, 2})).item(), 1);  // flattened, first of ties
  EXPECT_EQ(argmax(Tensor::from_vector({1, 5, 5, 2}, {2, 2}), std::nullopt, true).shape(), (Shape{1, 1}));
}

}  // namespace
}  // namespace bitnet
