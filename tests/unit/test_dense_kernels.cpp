// Dense head kernels: int8 variants bit for bit against the reference (and the reference against a plain
// dot product); int4 and f16 variants within a float tolerance of the reference. The int4 quantizer against
// plain absmax rounding.
#include <bitnet/cpu.h>
#include <bitnet/dense.h>
#include <bitnet/dtype.h>
#include <bitnet/ops.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <algorithm>
#include <random>
#include <string>

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
  for (auto [rows, cols, tokens] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {5, 17, 2}, {6, 2560, 3}, {3, 1001, 1},
                                     {7, 35, 5}, {9, 2560, 8}, {4, 33, 11},
                                     {10, 75, 13}, {8, 2560, 16}}) {
    const Tensor w = test::random_tensor({rows, cols}, rng).to(DType::f16);
    const Tensor x = test::random_tensor({tokens, cols}, rng);
    std::vector<float> want(static_cast<size_t>(tokens * rows)), got(want.size());
    kernels::DenseF16Args a{static_cast<const uint16_t*>(w.data()), cols, cols, x.data_as<float>(), cols,
                            want.data(), rows, 0, rows, tokens};
    ref.gemm_f16(a);
    a.y = got.data();
    k->gemm_f16(a);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6 * cols) << i;
    // Batch invariance: each token's outputs are exactly what the same variant gives for that token alone (the
    // engine's promise that a sequence decodes the same in a batch as alone).
    for (int64_t t = 0; t < tokens; ++t) {
      std::vector<float> alone(static_cast<size_t>(rows));
      kernels::DenseF16Args one{static_cast<const uint16_t*>(w.data()), cols, cols, x.data_as<float>() + t * cols, cols,
                                alone.data(), rows, 0, rows, 1};
      k->gemm_f16(one);
      for (int64_t n = 0; n < rows; ++n) ASSERT_EQ(alone[static_cast<size_t>(n)], got[static_cast<size_t>(t * rows + n)]) << t << "," << n;
    }
  }
}

// sum_k |W[n, k] q[t, k]| * dequant[t]: the scale of the float rounding in one output.
float abs_dot(const Tensor& w, const QuantizedActivations& q, int64_t n, int64_t t) {
  double s = 0;
  for (int64_t k = 0; k < w.size(1); ++k) s += std::fabs(static_cast<double>(w.data_as<float>()[n * w.size(1) + k]) * q.row(t)[k]);
  return static_cast<float>(s * q.dequant()[t]);
}

TEST_P(DenseVariant, Int4WithinToleranceOfReference) {
  const auto* k = kernels::dense_family().variant(GetParam());
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " dense kernel is not runnable on this CPU";
  const auto& ref = *kernels::dense_family().variant(Isa::ref);
  std::mt19937 rng(4);
  // Columns that end inside a group of 32 and inside a super-block of 128; rows that end inside a row group.
  for (auto [rows, cols, tokens] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {5, 70, 3}, {9, 256, 6},
                                    {17, 1000, 1}, {4, 2560, 5}, {7, 161, 2}}) {
    Tensor w = test::random_tensor({rows, cols}, rng, -3.0f, 3.0f);
    if (rows > 1) w.slice(0, 1, 2).copy_from(Tensor::full({1, cols}, -3.0));  // a constant row: every level -8
    const Int4Matrix m = Int4Matrix::quantize(w);
    const Tensor values = m.dequantize();
    Tensor x = test::random_tensor({tokens, cols}, rng);
    QuantizedActivations q;
    quantize_activations(x.contiguous().data_as<float>(), tokens, cols, cols, q);
    if (tokens > 1) std::fill(q.row(1), q.row(1) + cols, int8_t{-128});  // an extreme token
    const int64_t y_stride = rows + 3;
    std::vector<float> want(static_cast<size_t>(tokens * y_stride)), got(want.size());
    // The step order as int4_matmul builds it (the reference reads q itself).
    const int64_t groups = m.k_pad() / kernels::kDenseI4Group;
    std::vector<int8_t> steps(static_cast<size_t>(tokens * m.k_pad()));
    std::vector<int32_t> offsets(static_cast<size_t>(tokens * groups));
    for (int64_t t = 0; t < tokens; ++t)
      kernels::dense_i4_step_order(q.row(t), m.k_pad(), steps.data() + t * m.k_pad(), offsets.data() + t * groups);
    kernels::DenseI4Args a{m.data(),       m.scales(),  m.k_pad(),  q.row(0), q.k_pad(), steps.data(),
                           offsets.data(), q.dequant(), want.data(), y_stride, 0,         rows,
                           tokens};
    ref.gemm_i4(a);
    a.y = got.data();
    k->gemm_i4(a);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t n = 0; n < rows; ++n) {
        const auto i = static_cast<size_t>(t * y_stride + n);
        const float tol = 2e-6f * abs_dot(values, q, n, t) + 1e-30f;
        ASSERT_NEAR(got[i], want[i], tol) << "row " << n << " token " << t;
        if (GetParam() != Isa::ref) continue;
        double exact = 0;  // the reference against a plain product of the dequantized weights
        for (int64_t c = 0; c < cols; ++c) exact += static_cast<double>(values.data_as<float>()[n * cols + c]) * q.row(t)[c];
        ASSERT_NEAR(want[i], exact * q.dequant()[t], tol) << "row " << n << " token " << t;
      }
    if (rows > 2) {  // a row range that starts and ends inside row groups
      std::fill(got.begin(), got.end(), -1.0f);
      a.row_begin = 1;
      a.row_end = rows - 1;
      k->gemm_i4(a);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t n = 0; n < rows; ++n) {
          const auto i = static_cast<size_t>(t * y_stride + n);
          if (n >= 1 && n < rows - 1) {
            ASSERT_NEAR(got[i], want[i], 2e-6f * abs_dot(values, q, n, t) + 1e-30f) << "rows 1.." << rows - 1 << " row " << n;
          } else {
            ASSERT_EQ(got[i], -1.0f) << "row " << n << " outside the range was written";
          }
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, DenseVariant, ::testing::Values(Isa::ref, Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::neon),
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

TEST(DenseMatmul, Int4QuantizerBeatsPlainAbsmaxInEveryGroup) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  constexpr int64_t kRows = 64, kCols = 300;  // the last group holds 12 values
  Tensor w = Tensor::empty({kRows, kCols});
  for (int64_t i = 0; i < w.numel(); ++i) w.data_as<float>()[i] = normal(rng);
  w.data_as<float>()[5] = 0.5f;  // an outlier
  const Tensor values = Int4Matrix::quantize(w).dequantize();
  double total = 0, total_plain = 0;
  for (int64_t n = 0; n < kRows; ++n)
    for (int64_t g = 0; g < kCols; g += 32) {
      const float* x = w.data_as<float>() + n * kCols + g;
      const int64_t len = std::min<int64_t>(32, kCols - g);
      float extreme = 0;
      for (int64_t i = 0; i < len; ++i)
        if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
      const float d = f16_to_f32(f32_to_f16(extreme / -8.0f));  // plain: the extreme at level -8
      double err = 0, err_plain = 0;
      for (int64_t i = 0; i < len; ++i) {
        const float v = values.data_as<float>()[n * kCols + g + i];
        const float level = std::clamp(std::nearbyint(x[i] / d), -8.0f, 7.0f);
        err += (x[i] - v) * (x[i] - v);
        err_plain += (x[i] - d * level) * (x[i] - d * level);
      }
      ASSERT_LE(err, err_plain * (1 + 1e-5) + 1e-20) << "row " << n << " group " << g / 32;
      total += err;
      total_plain += err_plain;
    }
  EXPECT_LT(total, 0.95 * total_plain);  // measured 0.934: the search finds better scales in many groups
  double signal = 0;
  for (int64_t i = 0; i < w.numel(); ++i) signal += static_cast<double>(w.data_as<float>()[i]) * w.data_as<float>()[i];
  EXPECT_GT(10 * std::log10(signal / total), 19.0);  // weight SQNR in dB: 16 levels per group of 32
  // From f16 (the embedding's type in the files): the same quality.
  const Tensor w16 = w.to(DType::f16);
  const Tensor via_f16 = Int4Matrix::quantize(w16).dequantize();
  EXPECT_LT(quant_error(w16.to(DType::f32), via_f16).mse, 1.01 * total / static_cast<double>(w.numel()));
}

TEST(DenseMatmul, Int4HeadApproximatesTheFloatProductAndRejectsBadWeights) {
  std::mt19937 rng(6);
  const Tensor w = test::random_tensor({300, 640}, rng);
  const Tensor x = test::random_tensor({2, 640}, rng);
  const Int4Matrix m = Int4Matrix::quantize(w);
  EXPECT_EQ(m.bytes(), static_cast<size_t>(300 * 768 / 2 + 300 * 768 / 32 * 2));  // k padded to 768
  QuantizedActivations q;
  quantize_activations(x.data_as<float>(), 2, 640, 640, q);
  Tensor y = Tensor::empty({2, 300});
  int4_matmul(m, q, y.data_as<float>(), 300);
  EXPECT_GT(quant_error(test::naive_matmul_t(x, w), y).sqnr_db, 18.0);
  QuantizedActivations short_q;
  quantize_activations(x.data_as<float>(), 2, 600, 640, short_q);
  EXPECT_THROW(int4_matmul(m, short_q, y.data_as<float>(), 300), Error);
  Tensor bad = test::random_tensor({3, 40}, rng);
  bad.data_as<float>()[45] = NAN;
  try {
    Int4Matrix::quantize(bad);
    FAIL() << "NaN accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
  }
  bad.data_as<float>()[45] = 1e7f;  // its scale would not fit in f16
  EXPECT_THROW(Int4Matrix::quantize(bad), Error);
}

}  // namespace
}  // namespace bitnet
