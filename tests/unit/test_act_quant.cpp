// Activation quantization: the BitNet formula checked directly, and every variant against the reference bit
// for bit (plain and fused with RMSNorm).
#include <bitnet/cpu.h>
#include <bitnet/quant.h>
#include <gtest/gtest.h>

#include "test_util.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>

#include "kernels/act_quant.h"

namespace bitnet {
namespace {

TEST(ActQuant, RoundsHalfToEvenAndClamps) {
  // max|x| = 127 makes s = 1, so x * s is exactly x: ties are visible.
  const std::vector<float> x = {127.0f, 2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 1.5f, -127.0f, 0.0f, 126.5f};
  QuantizedActivations q;
  quantize_activations(x.data(), 1, static_cast<int64_t>(x.size()), 0, q);
  const std::vector<int> want = {127, 2, 4, -2, 0, 0, 2, -127, 0, 126};
  int32_t sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(q.row(0)[i], want[i]) << x[i];
    sum += want[i];
  }
  EXPECT_EQ(q.sums()[0], sum);
  EXPECT_EQ(q.dequant()[0], 1.0f);
  EXPECT_EQ(q.k_pad(), 256);
  for (int64_t i = static_cast<int64_t>(x.size()); i < q.k_pad(); ++i) EXPECT_EQ(q.row(0)[i], 0);
  // An all-zero token: the 1e-5 floor keeps the scale finite.
  const std::vector<float> zeros(5, 0.0f);
  quantize_activations(zeros.data(), 1, 5, 5, q);
  EXPECT_EQ(q.dequant()[0], 1.0f / (127.0f / 1e-5f));
  EXPECT_EQ(q.sums()[0], 0);
}

TEST(ActQuant, MatchesTheFormulaOnRandomTokens) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 3.0f);
  const int64_t tokens = 7, k = 1000, stride = 1003;
  std::vector<float> x(static_cast<size_t>(tokens * stride));
  for (auto& v : x) v = d(rng);
  QuantizedActivations q;
  quantize_activations(x.data(), tokens, k, stride, q);
  for (int64_t t = 0; t < tokens; ++t) {
    float m = 0;
    for (int64_t i = 0; i < k; ++i) m = std::max(m, std::fabs(x[static_cast<size_t>(t * stride + i)]));
    const float s = 127.0f / std::max(m, 1e-5f);
    for (int64_t i = 0; i < k; ++i) {
      const float r = std::nearbyint(x[static_cast<size_t>(t * stride + i)] * s);
      ASSERT_EQ(q.row(t)[i], static_cast<int8_t>(std::clamp(r, -128.0f, 127.0f)));
    }
    EXPECT_EQ(q.dequant()[t], 1.0f / s);
  }
}

// The kernels read a block's activations in 32- and 64-byte loads: every row starts on a cache line, so none of
// them crosses one (with malloc's 16-byte alignment half of AVX2's did, a fifth of the tiles' speed). Sizes on
// both sides of malloc's mmap threshold, and a resize that grows the buffer.
TEST(ActQuant, RowsStartOnACacheLine) {
  QuantizedActivations q;
  for (const auto& [tokens, k] : {std::pair<int64_t, int64_t>{1, 100}, {8, 2560}, {512, 2560}, {3, 6912}}) {
    q.resize(tokens, k);
    for (int64_t t = 0; t < tokens; ++t)
      ASSERT_EQ(reinterpret_cast<uintptr_t>(q.row(t)) % 64, 0u) << tokens << " x " << k << ", token " << t;
  }
}

TEST(ActQuant, FusedRmsNormMatchesNormThenQuantize) {
  std::mt19937 rng(6);
  std::normal_distribution<float> d(0.0f, 2.0f);
  const int64_t tokens = 3, k = 2560;
  std::vector<float> x(static_cast<size_t>(tokens * k)), g(static_cast<size_t>(k));
  for (auto& v : x) v = d(rng);
  for (auto& v : g) v = 1.0f + 0.1f * d(rng);
  QuantizedActivations fused;
  rms_norm_quantize_activations(x.data(), g.data(), 1e-5f, tokens, k, k, fused);
  for (int64_t t = 0; t < tokens; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < k; ++i) ss += static_cast<double>(x[static_cast<size_t>(t * k + i)]) * x[static_cast<size_t>(t * k + i)];
    const auto inv = static_cast<float>(1.0 / std::sqrt(ss / k + 1e-5));
    std::vector<float> y(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i) y[static_cast<size_t>(i)] = (x[static_cast<size_t>(t * k + i)] * inv) * g[static_cast<size_t>(i)];
    QuantizedActivations plain;
    quantize_activations(y.data(), 1, k, k, plain);
    int mismatches = 0;
    for (int64_t i = 0; i < k; ++i) mismatches += std::abs(plain.row(0)[i] - fused.row(t)[i]) > 0;
    // inv may differ in its last bit (summation order), which can move a value sitting on a rounding tie.
    EXPECT_LE(mismatches, 3);
    EXPECT_NEAR(plain.dequant()[0], fused.dequant()[t], 1e-6 * plain.dequant()[0]);
  }
}

class ActQuantVariant : public ::testing::TestWithParam<Isa> {};

TEST_P(ActQuantVariant, MatchesReferenceBitForBit) {
  const auto* k = kernels::act_quant_family().variant(GetParam());
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  const auto& ref = *kernels::act_quant_family().variant(Isa::ref);
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 4.0f);
  for (int64_t n : {1, 3, 7, 15, 16, 17, 63, 64, 65, 255, 256, 1000, 2560, 6913}) {
    std::vector<float> x(static_cast<size_t>(n + 1)), g(static_cast<size_t>(n + 1));
    for (auto& v : x) v = d(rng);
    for (auto& v : g) v = d(rng);
    const float* xp = x.data() + 1;  // misaligned
    const float* gp = g.data() + 1;
    ASSERT_EQ(k->absmax(xp, n), ref.absmax(xp, n));
    ASSERT_EQ(std::bit_cast<uint64_t>(k->sum_squares(xp, n)), std::bit_cast<uint64_t>(ref.sum_squares(xp, n))) << n;
    const float s = 127.0f / ref.absmax(xp, n);
    std::vector<int8_t> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    ASSERT_EQ(k->quantize(xp, n, s, a.data()), ref.quantize(xp, n, s, b.data()));
    ASSERT_EQ(a, b);
    ASSERT_EQ(k->absmax_normed(xp, gp, 0.37f, n), ref.absmax_normed(xp, gp, 0.37f, n));
    ASSERT_EQ(k->quantize_normed(xp, gp, 0.37f, n, s, a.data()), ref.quantize_normed(xp, gp, 0.37f, n, s, b.data()));
    ASSERT_EQ(a, b);
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, ActQuantVariant, ::testing::Values(Isa::ref, Isa::avx2, Isa::avx512, Isa::neon),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace bitnet
