// Every ISA variant of the vector kernel family against the scalar reference, on awkward lengths and
// misaligned offsets (Highway's sweep: 1, 3, 7, 16, N/2, N, N+1, 3N, 8N+2 with N = one register of f32).
#include <bitnet/cpu.h>
#include <bitnet/dtype.h>
#include <gtest/gtest.h>

#include "test_util.h"

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "kernels/vector.h"

namespace bitnet {
namespace {

using kernels::VectorKernels;

const std::vector<int64_t> kLengths = {1, 3, 7, 8, 16, 17, 31, 33, 48, 49, 129, 1000, 4099};

class VectorVariant : public ::testing::TestWithParam<Isa> {
 protected:
  const VectorKernels* variant() const { return kernels::vector_family().variant(GetParam()); }
  const VectorKernels& ref() const { return *kernels::vector_family().variant(Isa::ref); }
};

std::vector<float> random_values(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

bool close(float got, float want, float rel, float abs_tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= rel * std::fabs(want) + abs_tol;
}

TEST_P(VectorVariant, ElementwiseAgreesWithReference) {
  const VectorKernels* k = variant();
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(1);
  for (int64_t n : kLengths) {
    for (int64_t offset : {0, 1, 3}) {  // misaligned starts
      auto a = random_values(static_cast<size_t>(n + offset), rng, -10.0f, 10.0f);
      auto b = random_values(static_cast<size_t>(n + offset), rng, 0.25f, 4.0f);
      if (n > 5) a[static_cast<size_t>(offset + 2)] = std::nanf("");
      std::vector<float> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
      for (int op = 0; op < kernels::kBinaryOpCount; ++op) {
        k->binary[op](a.data() + offset, b.data() + offset, got.data(), n);
        ref().binary[op](a.data() + offset, b.data() + offset, want.data(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(close(got[i], want[i], 0, 0) || (op == 4 && close(got[i], want[i], 2e-7f, 0)))
            << "binary op " << op << " n=" << n << " i=" << i;
        k->binary_scalar[op](a.data() + offset, 1.75f, got.data(), n);
        ref().binary_scalar[op](a.data() + offset, 1.75f, want.data(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(close(got[i], want[i], op == 4 ? 2e-7f : 0.0f, 0))
            << "scalar op " << op << " n=" << n << " i=" << i;
      }
      for (int op = 0; op < kernels::kUnaryOpCount; ++op) {
        k->unary[op](a.data() + offset, got.data(), n);
        ref().unary[op](a.data() + offset, want.data(), n);
        // Polynomial exp/erf/tanh: a few ulp relative, plus a tiny absolute slack near zero crossings.
        for (int64_t i = 0; i < n; ++i)
          ASSERT_TRUE(close(got[i], want[i], 5e-7f, 5e-8f))
              << "unary op " << op << " x=" << a[static_cast<size_t>(offset + i)] << " got " << got[i] << " want "
              << want[i];
      }
    }
  }
}

TEST_P(VectorVariant, RowsAgreeWithReference) {
  const VectorKernels* k = variant();
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(2);
  for (int64_t n : kLengths) {
    auto x = random_values(static_cast<size_t>(n + 1), rng, -20.0f, 20.0f);
    auto w = random_values(static_cast<size_t>(n + 1), rng, -1.0f, 1.0f);
    const float* xp = x.data() + 1;
    EXPECT_NEAR(k->sum(xp, n), ref().sum(xp, n), 1e-9 * n);
    EXPECT_NEAR(k->sum_sq_dev(xp, 0.5, n), ref().sum_sq_dev(xp, 0.5, n), 1e-9 * n * 400);
    EXPECT_EQ(k->max(xp, n), ref().max(xp, n));
    EXPECT_EQ(k->min(xp, n), ref().min(xp, n));
    std::vector<float> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    k->softmax_row(xp, got.data(), n);
    ref().softmax_row(xp, want.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(close(got[i], want[i], 1e-6f, 1e-30f)) << "softmax n=" << n;
    // Attention's softmax numerators against the row's largest value, and its fold (bit for bit: two products and
    // a sum, each rounded, in every variant).
    const float top = ref().max(xp, n);
    const double got_sum = k->exp_shifted_sum(xp, top, got.data(), n);
    const double want_sum = ref().exp_shifted_sum(xp, top, want.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(close(got[i], want[i], 5e-7f, 1e-30f)) << "exp_shifted_sum n=" << n;
    double plain = 0.0;
    for (int64_t i = 0; i < n; ++i) plain += std::exp(static_cast<double>(xp[i]) - top);
    EXPECT_NEAR(got_sum, plain, 1e-6 * plain);
    EXPECT_NEAR(want_sum, plain, 1e-6 * plain);
    std::vector<float> y_got(w.begin(), w.begin() + n), y_want = y_got;
    k->scale_add(y_got.data(), 0.375f, xp, -1.25f, n);
    ref().scale_add(y_want.data(), 0.375f, xp, -1.25f, n);
    for (int64_t i = 0; i < n; ++i) {
      // Each product rounded on its own (volatile: no contraction into a fused multiply-add here either).
      const volatile float left = w[static_cast<size_t>(i)] * 0.375f, right = xp[i] * -1.25f;
      const float want_i = left + right;
      ASSERT_EQ(std::bit_cast<uint32_t>(y_got[static_cast<size_t>(i)]), std::bit_cast<uint32_t>(want_i)) << n;
      ASSERT_EQ(std::bit_cast<uint32_t>(y_want[static_cast<size_t>(i)]), std::bit_cast<uint32_t>(want_i)) << n;
    }
    k->log_softmax_row(xp, got.data(), n);
    ref().log_softmax_row(xp, want.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(close(got[i], want[i], 1e-6f, 1e-6f)) << "log_softmax n=" << n;
    k->rms_norm_row(xp, w.data(), got.data(), n, 1e-6f);
    ref().rms_norm_row(xp, w.data(), want.data(), n, 1e-6f);
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(close(got[i], want[i], 1e-6f, 1e-7f)) << "rms_norm n=" << n;
    x[3 % x.size()] = std::nanf("");
    EXPECT_TRUE(std::isnan(k->max(x.data(), n + 1)));
    EXPECT_TRUE(std::isnan(k->min(x.data(), n + 1)));
  }
}

// The softmax numerators at the edges: far below the maximum (0), -inf (0, not NaN), NaN (kept), and the tail of a
// row that is not a multiple of 16.
TEST_P(VectorVariant, ExpShiftedSumAtTheEdges) {
  const VectorKernels* k = variant();
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0.0f, -1.0f, -200.0f, -inf, -90.0f, 3.0f, -0.5f, 2.0f, -87.0f, 1.0f,
                          -1e30f, 0.25f, -3.0f, -4.0f, -5.0f, -6.0f, -7.0f, -8.0f, 2.5f};
  std::vector<float> out(x.size(), -1.0f);
  const double total = k->exp_shifted_sum(x.data(), 3.0f, out.data(), static_cast<int64_t>(x.size()));
  double want = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = std::exp(static_cast<double>(x[i]) - 3.0);
    want += e;
    ASSERT_NEAR(out[i], e, 1e-6 * e + 1e-38) << x[i];
  }
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_EQ(out[5], 1.0f);
  EXPECT_NEAR(total, want, 1e-6 * want);
  x[7] = std::nanf("");
  EXPECT_TRUE(std::isnan(k->exp_shifted_sum(x.data(), 3.0f, out.data(), static_cast<int64_t>(x.size()))));
  EXPECT_TRUE(std::isnan(out[7]));
  EXPECT_FALSE(std::isnan(out[6]));  // the others stay numbers
}

// The softmax numerators are the variant's own exp of x - m, bit for bit, whatever the length (vector bodies and
// their tails), over the normal range of results.
TEST_P(VectorVariant, ExpShiftedSumIsTheVariantsOwnExp) {
  const VectorKernels* k = variant();
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(5);
  // x - m from -86.5 (above the AVX-512 variant's subnormal results) to 87.5 (finite).
  std::uniform_real_distribution<float> d(-84.0f, 90.0f);
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 33, 130}) {
    std::vector<float> x(static_cast<size_t>(n)), shifted(x.size()), got(x.size()), want(x.size());
    for (auto& v : x) v = d(rng);
    const float m = 2.5f;
    for (size_t i = 0; i < x.size(); ++i) shifted[i] = x[i] - m;
    k->unary[static_cast<int>(kernels::UnaryOp::exp)](shifted.data(), want.data(), n);
    const double total = k->exp_shifted_sum(x.data(), m, got.data(), n);
    double sum = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << "n=" << n << " x=" << x[i];
      sum += want[i];
    }
    EXPECT_NEAR(total, sum, 1e-12 * sum) << "n=" << n;
  }
}

// Attention's two row products for g = 1..9 queries (two passes of up to 4 and a remainder), over 1..37 rows
// that lie `stride` floats apart (unaligned): within rounding of double sums, and bit for bit as ref, which
// follows the specification (vector_impl.h) operation by operation. A query's result is the same whatever g.
TEST_P(VectorVariant, AttentionRowProductsFollowTheSpecification) {
  const VectorKernels* k = variant();
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(2);
  auto same = [](float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); };
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{16}, int64_t{24}, int64_t{33}, int64_t{48}, int64_t{64},
                    int64_t{100}, int64_t{128}, int64_t{129}}) {
    const int64_t stride = n + 3, max_rows = 37, out_stride = max_rows + 2;
    const auto rows = random_values(static_cast<size_t>(max_rows * stride), rng, -1.0f, 1.0f);
    for (int64_t g : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{9}}) {
      const auto x = random_values(static_cast<size_t>(g * n), rng, -1.0f, 1.0f);
      const auto a = random_values(static_cast<size_t>(g * out_stride), rng, 0.0f, 1.0f);
      const auto y0 = random_values(static_cast<size_t>(g * n), rng, -1.0f, 1.0f);
      for (int64_t m : {int64_t{1}, int64_t{5}, max_rows}) {
        std::vector<float> got(static_cast<size_t>(g * out_stride)), want(got.size());
        k->dot_rows(rows.data(), m, stride, x.data(), g, n, got.data(), out_stride);
        ref().dot_rows(rows.data(), m, stride, x.data(), g, n, want.data(), out_stride);
        for (int64_t q = 0; q < g; ++q)
          for (int64_t j = 0; j < m; ++j) {
            double exact = 0;
            for (int64_t i = 0; i < n; ++i)
              exact += static_cast<double>(rows[static_cast<size_t>(j * stride + i)]) * x[static_cast<size_t>(q * n + i)];
            const float v = got[static_cast<size_t>(q * out_stride + j)];
            ASSERT_NEAR(v, exact, 1e-5 * (n + 1)) << "dot_rows n=" << n << " g=" << g;
            ASSERT_TRUE(same(v, want[static_cast<size_t>(q * out_stride + j)])) << "dot_rows n=" << n << " g=" << g << " q=" << q << " row " << j;
          }
        float alone = 0;  // the last query by itself
        k->dot_rows(rows.data() + (m - 1) * stride, 1, stride, x.data() + (g - 1) * n, 1, n, &alone, 1);
        ASSERT_TRUE(same(alone, got[static_cast<size_t>((g - 1) * out_stride + m - 1)])) << "dot_rows n=" << n << " g=" << g;

        // On f16 rows: the same bits as converting the rows to f32 first (decode reads its f16 cache in place,
        // prefill converts chunks; both must agree).
        std::vector<uint16_t> half(rows.size());
        std::vector<float> widened(rows.size());
        for (size_t i = 0; i < rows.size(); ++i) widened[i] = f16_to_f32(half[i] = f32_to_f16(rows[i]));
        std::vector<float> h_got(got.size()), h_want(got.size());
        k->dot_rows_f16(half.data(), m, stride, x.data(), g, n, h_got.data(), out_stride);
        ref().dot_rows(widened.data(), m, stride, x.data(), g, n, h_want.data(), out_stride);
        for (int64_t q = 0; q < g; ++q)
          for (int64_t j = 0; j < m; ++j)
            ASSERT_TRUE(same(h_got[static_cast<size_t>(q * out_stride + j)], h_want[static_cast<size_t>(q * out_stride + j)]))
                << "dot_rows_f16 n=" << n << " g=" << g << " q=" << q << " row " << j;
        std::vector<float> hy_got = y0, hy_want = y0;
        k->axpy_rows_f16(a.data(), out_stride, half.data(), m, stride, hy_got.data(), g, n);
        ref().axpy_rows(a.data(), out_stride, widened.data(), m, stride, hy_want.data(), g, n);
        for (size_t i = 0; i < hy_got.size(); ++i)
          ASSERT_TRUE(same(hy_got[i], hy_want[i])) << "axpy_rows_f16 n=" << n << " g=" << g << " at " << i;

        std::vector<float> y_got = y0, y_want = y0;
        k->axpy_rows(a.data(), out_stride, rows.data(), m, stride, y_got.data(), g, n);
        ref().axpy_rows(a.data(), out_stride, rows.data(), m, stride, y_want.data(), g, n);
        for (int64_t q = 0; q < g; ++q)
          for (int64_t i = 0; i < n; ++i) {
            float spec = y0[static_cast<size_t>(q * n + i)];  // the specification: fused, rows in order
            for (int64_t j = 0; j < m; ++j)
              spec = std::fma(a[static_cast<size_t>(q * out_stride + j)], rows[static_cast<size_t>(j * stride + i)], spec);
            const size_t at = static_cast<size_t>(q * n + i);
            ASSERT_TRUE(same(y_want[at], spec)) << "ref axpy_rows n=" << n << " g=" << g << " i=" << i;
            ASSERT_TRUE(same(y_got[at], spec)) << "axpy_rows n=" << n << " g=" << g << " q=" << q << " i=" << i;
          }
      }
    }
  }
}

TEST_P(VectorVariant, ConversionsAgreeWithScalarFunctions) {
  const VectorKernels* k = variant();
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> bits;
  for (int64_t n : kLengths) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) {
      v = std::bit_cast<float>(bits(rng) & 0xc7ffffffu);  // exponents around the f16 range, subnormals too
    }
    std::vector<uint16_t> h(static_cast<size_t>(n));
    std::vector<float> back(static_cast<size_t>(n));
    k->f32_to_f16(x.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      if (std::isnan(x[i])) continue;
      ASSERT_EQ(h[i], f32_to_f16(x[i])) << x[i];
    }
    k->f16_to_f32(h.data(), back.data(), n);
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(back[i])) {
        ASSERT_EQ(back[i], f16_to_f32(h[i]));
      }
    k->f32_to_bf16(x.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], f32_to_bf16(x[i]));
    k->bf16_to_f32(h.data(), back.data(), n);
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(back[i])) {
        ASSERT_EQ(back[i], bf16_to_f32(h[i]));
      }
  }
}

// Rows of a KV cache that lie row_bytes apart (with bytes between them that are not read): each row's values
// [first, first + n) as f32 rows of n, q8_0 as scale x code and f16 as the scalar conversion, bit for bit.
TEST_P(VectorVariant, CacheRowsReadAsScaleTimesCodeOrHalf) {
  const VectorKernels* k = variant();
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> scale(0.0f, 0.05f);
  constexpr int64_t kRows = 3, kGap = 6;
  for (int64_t blocks : {int64_t{1}, int64_t{3}, int64_t{10}}) {
    const int64_t row_bytes = blocks * 34 + kGap;
    std::vector<uint8_t> rows(static_cast<size_t>(kRows * row_bytes));
    for (auto& b : rows) b = static_cast<uint8_t>(byte(rng));
    for (int64_t r = 0; r < kRows; ++r)
      for (int64_t b = 0; b < blocks; ++b) {  // finite scales (random bits could be NaN or inf)
        const uint16_t d = f32_to_f16(scale(rng));
        rows[static_cast<size_t>(r * row_bytes + b * 34)] = static_cast<uint8_t>(d & 0xff);
        rows[static_cast<size_t>(r * row_bytes + b * 34 + 1)] = static_cast<uint8_t>(d >> 8);
      }
    const int64_t n_all = blocks * 32;
    for (int64_t first : {int64_t{0}, int64_t{1}, int64_t{17}, int64_t{32}, n_all - 5}) {
      for (int64_t n : {int64_t{1}, int64_t{15}, int64_t{32}, int64_t{48}, n_all}) {
        if (first < 0 || first + n > n_all) continue;
        std::vector<float> got(static_cast<size_t>(kRows * n));
        k->q8_0_rows_to_f32(rows.data(), kRows, row_bytes, first, n, got.data());
        for (int64_t r = 0; r < kRows; ++r)
          for (int64_t j = 0; j < n; ++j) {
            const int64_t i = first + j, b = i / 32;
            const uint8_t* block = rows.data() + r * row_bytes + b * 34;
            const float d = f16_to_f32(static_cast<uint16_t>(block[0] | (block[1] << 8)));
            const float want = static_cast<float>(static_cast<int8_t>(block[2 + i % 32])) * d;
            ASSERT_EQ(std::bit_cast<uint32_t>(got[static_cast<size_t>(r * n + j)]), std::bit_cast<uint32_t>(want))
                << "q8_0 blocks " << blocks << " first " << first << " n " << n << " row " << r << " j " << j;
          }
        // The same bytes as f16 rows (half the row, rounded down, holds whole values).
        if (first + n > row_bytes / 2) continue;
        k->f16_rows_to_f32(rows.data(), kRows, row_bytes, first, n, got.data());
        for (int64_t r = 0; r < kRows; ++r)
          for (int64_t j = 0; j < n; ++j) {
            const uint8_t* v = rows.data() + r * row_bytes + 2 * (first + j);
            const float want = f16_to_f32(static_cast<uint16_t>(v[0] | (v[1] << 8)));
            if (std::isnan(want)) continue;
            ASSERT_EQ(std::bit_cast<uint32_t>(got[static_cast<size_t>(r * n + j)]), std::bit_cast<uint32_t>(want))
                << "f16 first " << first << " n " << n << " row " << r << " j " << j;
          }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, VectorVariant, ::testing::Values(Isa::ref, Isa::avx2, Isa::avx512, Isa::neon),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(VectorDispatch, ForceIsaSwitchesTheSelectedVariant) {
  for (Isa isa : kernels::vector_family().runnable()) {
    force_isa(isa);
    EXPECT_EQ(kernels::vector_family().selected(), isa);
  }
  force_isa(std::nullopt);
  EXPECT_EQ(kernels::vector_family().selected(), preferred_isa());
}

}  // namespace
}  // namespace bitnet
