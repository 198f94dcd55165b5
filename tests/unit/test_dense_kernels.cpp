// Dense head kernels: int8 variants bit for bit against the reference (and the reference against a plain
// dot product); f16 variants within a float tolerance of the double-precision reference.
#include <bitnet/cpu.h>
#include <bitnet/dense.h>
#include <bitnet/ops.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "kernels/dense.h"
#include "test_util.h"

namespace bitnet {
namespace {

class DenseVariant : public ::testing::TestWithParam<Isa> {};

TEST_P(DenseVariant, Int8MatchesReferenceBitForBit) {
  const auto* k = kernels::dense_family().variant(GetParam());
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " dense kernel is not runnable on this CPU";
  const auto& ref = *kernels::dense_family().variant(Isa::ref);
  std::mt19937 rng(1);
  for (auto [rows, cols, tokens] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {5, 70, 3}, {9, 256, 6},
                                    {17, 1000, 1}, {4, 2560, 9}}) {
    Tensor w = test::random_tensor({rows, cols}, rng, -3.0f, 3.0f);
    if (rows > 1) w.slice(0, 1, 2).copy_from(Tensor::full({1, cols}, -3.0));  // a row at -127 everywhere
    const Int8Matrix m = Int8Matrix::quantize(w);
    Tensor x = test::random_tensor({tokens, cols}, rng);
    QuantizedActivations q;
    quantize_activations(x.contiguous().data_as<float>(), tokens, cols, cols, q);
    if (tokens > 1) {  // an extreme token: every activation -128
      std::fill(q.row(1), q.row(1) + cols, int8_t{-128});
      q.sums()[1] = static_cast<int32_t>(-128 * cols);
    }
    const int64_t y_stride = rows + 3;
    std::vector<float> want(static_cast<size_t>(tokens * y_stride)), got(want.size());
    kernels::DenseI8Args a{m.data(), m.k_pad(), m.row_scales().data(), q.row(0), q.k_pad(), q.sums(), q.dequant(),
                           want.data(), y_stride, 0, rows, tokens};
    ref.gemm_i8(a);
    a.y = got.data();
    k->gemm_i8(a);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]));
    if (rows > 2) {  // a row range that starts and ends inside row groups (the interleaved layout)
      std::fill(got.begin(), got.end(), -1.0f);
      a.row_begin = 1;
      a.row_end = rows - 1;
      k->gemm_i8(a);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t n = 0; n < rows; ++n) {
          const auto i = static_cast<size_t>(t * y_stride + n);
          ASSERT_EQ(got[i], n >= 1 && n < rows - 1 ? want[i] : -1.0f) << "rows 1.." << rows - 1 << " row " << n;
        }
    }
    if (GetParam() != Isa::ref) continue;
    const auto values = m.unpack();
    const auto row_major = m.row_major();
    ASSERT_EQ(row_major.size(), static_cast<size_t>(rows * m.k_pad()));
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t c = 0; c < m.k_pad(); ++c)
        ASSERT_EQ(row_major[static_cast<size_t>(n * m.k_pad() + c)],
                  c < cols ? static_cast<uint8_t>(values[static_cast<size_t>(n * cols + c)] + 128) : uint8_t{128});
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t n = 0; n < rows; ++n) {
        int64_t dot = 0;
        for (int64_t c = 0; c < cols; ++c) dot += values[static_cast<size_t>(n * cols + c)] * q.row(t)[c];
        ASSERT_EQ(want[static_cast<size_t>(t * y_stride + n)],
                  static_cast<float>(dot) * q.dequant()[t] * m.row_scales()[static_cast<size_t>(n)]);
      }
  }
}

TEST_P(DenseVariant, F16WithinToleranceOfReference) {
  const auto* k = kernels::dense_family().variant(GetParam());
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " dense kernel is not runnable on this CPU";
  const auto& ref = *kernels::dense_family().variant(Isa::ref);
  std::mt19937 rng(2);
  for (auto [rows, cols, tokens] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {5, 17, 2}, {6, 2560, 3}, {3, 1001, 1}}) {
    const Tensor w = test::random_tensor({rows, cols}, rng).to(DType::f16);
    const Tensor x = test::random_tensor({tokens, cols}, rng);
    std::vector<float> want(static_cast<size_t>(tokens * rows)), got(want.size());
    kernels::DenseF16Args a{static_cast<const uint16_t*>(w.data()), cols, cols, x.data_as<float>(), cols,
                            want.data(), rows, 0, rows, tokens};
    ref.gemm_f16(a);
    a.y = got.data();
    k->gemm_f16(a);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6 * cols) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, DenseVariant, ::testing::Values(Isa::ref, Isa::avx2, Isa::avx512, Isa::neon),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(DenseMatmul, Int8HeadApproximatesTheFloatProduct) {
  std::mt19937 rng(3);
  const Tensor w = test::random_tensor({300, 640}, rng);
  const Tensor x = test::random_tensor({2, 640}, rng);
  const Int8Matrix m = Int8Matrix::quantize(w);
  QuantizedActivations q;
  quantize_activations(x.data_as<float>(), 2, 640, 640, q);
  Tensor y = Tensor::empty({2, 300});
  int8_matmul(m, q, y.data_as<float>(), 300);
  EXPECT_GT(quant_error(test::naive_matmul_t(x, w), y).sqnr_db, 30.0);
  Tensor yh = Tensor::empty({2, 300});
  const Tensor wh = w.to(DType::f16);
  f16_matmul(wh, x.data_as<float>(), 2, 640, yh.data_as<float>(), 300);
  EXPECT_LT(quant_error(test::naive_matmul_t(x, wh), yh).relative_error, 1e-5);
  EXPECT_THROW(f16_matmul(w, x.data_as<float>(), 2, 640, yh.data_as<float>(), 300), Error);  // f32 weights
}

}  // namespace
}  // namespace bitnet
