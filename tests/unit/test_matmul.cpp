#include <bitnet/ops.h>
#include <gtest/gtest.h>

#include <random>

#include "test_util.h"

namespace bitnet {
namespace {

// Naive batched matmul over broadcast batch dims, in double.
void expect_matmul(const Tensor& a, const Tensor& b, const Tensor& c) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  test::for_each_index(c.shape(), [&](const std::vector<int64_t>& idx) {
    double acc = 0;
    std::vector<int64_t> ia(idx), ib(idx);
    for (int64_t p = 0; p < k; ++p) {
      ia[ia.size() - 1] = p;
      ib[ib.size() - 2] = p;
      acc += test::at_broadcast(a, ia) * test::at_broadcast(b, ib);
    }
    ASSERT_NEAR(c.at(std::span<const int64_t>(idx)), acc, 1e-4 * (1 + std::fabs(acc))) << m << "x" << k << "x" << n;
  });
}

TEST(Matmul, TwoDimensionalAllLayouts) {
  std::mt19937 rng(6);
  for (auto [m, k, n] : {std::tuple{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 1, 5}, {2, 100, 1}}) {
    Tensor a = test::random_tensor({m, k}, rng), b = test::random_tensor({k, n}, rng);
    Tensor at = test::random_tensor({k, m}, rng).t(), bt = test::random_tensor({n, k}, rng).t();
    expect_matmul(a, b, matmul(a, b));
    expect_matmul(at, b, matmul(at, b));  // transposed views go to BLAS without a copy
    expect_matmul(a, bt, matmul(a, bt));
    Tensor strided = test::random_tensor({m, 2 * k}, rng).slice(1, 0, 2 * k, 2);  // needs a copy
    expect_matmul(strided, b, matmul(strided, b));
  }
}

TEST(Matmul, BatchedWithBroadcastAndVectors) {
  std::mt19937 rng(7);
  Tensor a = test::random_tensor({2, 1, 4, 3}, rng), b = test::random_tensor({5, 3, 6}, rng);
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 5, 4, 6}));
  expect_matmul(a, b, c);
  Tensor v = test::random_tensor({3}, rng);
  EXPECT_EQ(matmul(a, v).shape(), (Shape{2, 1, 4}));
  EXPECT_EQ(matmul(v, b).shape(), (Shape{5, 6}));
  EXPECT_EQ(matmul(v, v).ndim(), 0);
  EXPECT_NEAR(matmul(v, v).item(), v.at({0}) * v.at({0}) + v.at({1}) * v.at({1}) + v.at({2}) * v.at({2}), 1e-5);
  Tensor h = a.to(DType::f16);
  EXPECT_EQ(matmul(h, b).dtype(), DType::f32);
  EXPECT_EQ(matmul(Tensor::zeros({3, 0}), Tensor::zeros({0, 2})).at({2, 1}), 0.0);
}

TEST(Matmul, ShapeErrors) {
  try {
    matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[matmul] inner dimensions differ: [2, 3] @ [4, 5] (3 vs 4)");
  }
  EXPECT_THROW(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 2})), Error);  // batch 2 vs 3
  EXPECT_THROW(matmul(Tensor::zeros({2, 2}, DType::i32), Tensor::zeros({2, 2})), Error);
}

}  // namespace
}  // namespace bitnet
