#include <bitnet/linalg.h>
#include <bitnet/ops.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "numpy_oracle.h"
#include "test_util.h"

namespace bitnet {
namespace {

double frobenius(const Tensor& t) {
  double s = 0;
  for (float v : t.to_vector()) s += static_cast<double>(v) * v;
  return std::sqrt(s);
}

double relative_error(const Tensor& got, const Tensor& want) { return frobenius(sub(got, want)) / frobenius(want); }

Tensor identity(int64_t n) {
  Tensor e = Tensor::zeros({n, n});
  for (int64_t i = 0; i < n; ++i) e.set({i, i}, 1.0);
  return e;
}

const std::vector<std::pair<int64_t, int64_t>> kShapes = {{1, 1}, {5, 5}, {7, 3}, {3, 7}, {40, 25}, {64, 64}};

TEST(Linalg, SvdReconstructs) {
  std::mt19937 rng(1);
  for (auto [m, n] : kShapes) {
    Tensor a = test::random_tensor({m, n}, rng);
    auto r = linalg::svd(a);
    const int64_t k = std::min(m, n);
    ASSERT_EQ(r.u.shape(), (Shape{m, k}));
    ASSERT_EQ(r.s.shape(), (Shape{k}));
    ASSERT_EQ(r.vt.shape(), (Shape{k, n}));
    EXPECT_LT(relative_error(matmul(mul(r.u, r.s), r.vt), a), 1e-5) << m << "x" << n;
    for (int64_t i = 1; i < k; ++i) EXPECT_GE(r.s.at({i - 1}), r.s.at({i}));
    EXPECT_LT(relative_error(matmul(r.u.t(), r.u), identity(k)), 1e-5);
    auto full = linalg::svd(a.t(), /*full_matrices=*/true);  // a transposed view as input
    EXPECT_EQ(full.u.shape(), (Shape{n, n}));
    EXPECT_EQ(full.vt.shape(), (Shape{m, m}));
  }
}

TEST(Linalg, SingularValuesMatchNumPy) {
  BITNET_REQUIRE_ORACLE("numpy");
  std::mt19937 rng(2);
  for (auto [m, n] : kShapes) {
    Tensor a = test::random_tensor({m, n}, rng);
    std::vector<char> input(16);
    std::memcpy(input.data(), &m, 8);
    std::memcpy(input.data() + 8, &n, 8);
    const auto values = a.to_vector();
    const auto bytes = test::as_bytes(values);
    input.insert(input.end(), bytes.begin(), bytes.end());
    const auto out = test::run_oracle("svd", input);
    const auto* want = reinterpret_cast<const float*>(out.data());
    const auto s = linalg::svd(a).s.to_vector();
    ASSERT_EQ(out.size(), s.size() * 4);
    for (size_t i = 0; i < s.size(); ++i) EXPECT_NEAR(s[i], want[i], 1e-5 * want[0]) << m << "x" << n << " s" << i;
  }
}

TEST(Linalg, QrReconstructsWithOrthonormalQ) {
  std::mt19937 rng(3);
  for (auto [m, n] : kShapes) {
    Tensor a = test::random_tensor({m, n}, rng);
    auto [q, r] = linalg::qr(a);
    const int64_t k = std::min(m, n);
    ASSERT_EQ(q.shape(), (Shape{m, k}));
    ASSERT_EQ(r.shape(), (Shape{k, n}));
    EXPECT_LT(relative_error(matmul(q, r), a), 1e-5);
    EXPECT_LT(relative_error(matmul(q.t(), q), identity(k)), 1e-5);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < std::min(i, n); ++j) EXPECT_EQ(r.at({i, j}), 0.0);
  }
}

TEST(Linalg, CholeskySolveInverse) {
  std::mt19937 rng(4);
  for (int64_t n : {1, 4, 33}) {
    Tensor g = test::random_tensor({n, n}, rng);
    Tensor spd = add(matmul(g, g.t()), mul(identity(n), static_cast<double>(n)));
    Tensor l = linalg::cholesky(spd);
    EXPECT_LT(relative_error(matmul(l, l.t()), spd), 1e-5);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) EXPECT_EQ(l.at({i, j}), 0.0);
    Tensor b = test::random_tensor({n, 3}, rng);
    Tensor x = linalg::solve(spd, b);
    EXPECT_LT(relative_error(matmul(spd, x), b), 1e-5);
    Tensor xv = linalg::solve(spd, b.select(1, 0));
    EXPECT_EQ(xv.shape(), (Shape{n}));
    EXPECT_LT(relative_error(xv, x.select(1, 0)), 1e-5);
    EXPECT_LT(relative_error(matmul(spd, linalg::inverse(spd)), identity(n)), 1e-5);
  }
}

TEST(Linalg, ClearErrors) {
  Tensor not_pd = Tensor::from_vector({1, 2, 2, 1}, {2, 2});  // eigenvalues 3 and -1
  try {
    linalg::cholesky(not_pd);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not positive definite (the leading minor of order 2"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(linalg::cholesky(Tensor::from_vector({1, 2, 0, 1}, {2, 2})), Error);  // not symmetric
  EXPECT_THROW(linalg::cholesky(Tensor::zeros({2, 3})), Error);
  EXPECT_THROW(linalg::inverse(Tensor::from_vector({1, 2, 2, 4}, {2, 2})), Error);  // singular
  EXPECT_THROW(linalg::solve(Tensor::zeros({2, 2}), Tensor::zeros({2})), Error);
  EXPECT_THROW(linalg::solve(identity(2), Tensor::zeros({3})), Error);
  EXPECT_THROW(linalg::svd(Tensor::zeros({2, 2, 2})), Error);
  EXPECT_THROW(linalg::svd(Tensor::from_vector({1, std::nanf("")}, {1, 2})), Error);
}

}  // namespace
}  // namespace bitnet
