// Weight quantizers, their dequantizers and error metrics; ternary packing; BitLinear against float math.
#include <bitnet/ops.h>
#include <bitnet/quant.h>
#include <bitnet/ternary.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "test_util.h"

namespace bitnet {
namespace {

TEST(TernaryQuant, AbsmeanPerTensorFollowsTheFormula) {
  // mean|w| = (0.1 + 0.5 + 1.0 + 2.4 + 0 + 0.3) / 6 = 0.7167; w * (1 / gamma) rounded, clamped to [-1, 1].
  Tensor w = Tensor::from_vector({0.1f, -0.5f, 1.0f, -2.4f, 0.0f, 0.3f}, {2, 3});
  TernaryWeights q = quantize_ternary(w);
  ASSERT_EQ(q.scales.size(), 1u);
  EXPECT_FLOAT_EQ(q.scales[0], 4.3f / 6.0f);
  EXPECT_EQ(q.values, (std::vector<int8_t>{0, -1, 1, -1, 0, 0}));
  Tensor back = dequantize(q);
  EXPECT_FLOAT_EQ(back.at({1, 0}), -q.scales[0]);
  // All zero: the 1e-5 floor, no division by zero.
  TernaryWeights z = quantize_ternary(Tensor::zeros({3, 4}));
  for (int8_t v : z.values) EXPECT_EQ(v, 0);
}

TEST(TernaryQuant, PerChannelAndPerGroupScales) {
  std::mt19937 rng(1);
  Tensor w = test::random_tensor({4, 64}, rng);
  auto rows = quantize_ternary(w, Granularity::per_channel);
  auto groups = quantize_ternary(w, Granularity::per_group, 16);
  ASSERT_EQ(rows.scales.size(), 4u);
  ASSERT_EQ(groups.scales.size(), 16u);
  double want = 0;
  for (int64_t k = 0; k < 16; ++k) want += std::fabs(w.at({1, 16 + k}));
  EXPECT_FLOAT_EQ(groups.scales[5], static_cast<float>(want / 16));
  // Finer scales never fit worse.
  const auto e_tensor = quant_error(w, dequantize(quantize_ternary(w)));
  const auto e_group = quant_error(w, dequantize(groups));
  EXPECT_LE(e_group.mse, e_tensor.mse * 1.0001);
  EXPECT_THROW(quantize_ternary(w, Granularity::per_group, 10), Error);  // 10 does not divide 64
}

TEST(MultiBitQuant, RoundTripErrorIsBoundedByHalfAStep) {
  std::mt19937 rng(2);
  Tensor w = test::random_tensor({8, 128}, rng, -3.0f, 3.0f);
  const auto wv = w.to_vector();
  for (int bits : {2, 4, 8})
    for (bool sym : {true, false})
      for (Granularity g : {Granularity::per_tensor, Granularity::per_channel, Granularity::per_group}) {
        const QuantSpec spec{bits, sym, g, g == Granularity::per_group ? 32 : 0};
        const QuantizedWeights q = quantize_weights(w, spec);
        const auto back = dequantize(q).to_vector();
        const int64_t group = g == Granularity::per_tensor ? 8 * 128 : g == Granularity::per_channel ? 128 : 32;
        for (size_t i = 0; i < wv.size(); ++i) {
          const float step = q.scales[i / static_cast<size_t>(group)];
          ASSERT_LE(q.codes[i], (1 << bits) - 1);
          // 2-bit symmetric clips at +1 step, so large values may be off by more than half a step.
          if (bits == 2 && sym) continue;
          ASSERT_LE(std::fabs(back[i] - wv[i]), 0.5f * step * 1.0001f)
              << bits << " bits " << (sym ? "sym " : "asym ") << granularity_name(g) << " i=" << i;
        }
        if (bits == 8) {
          EXPECT_GT(quant_error(w, dequantize(q)).sqnr_db, 38.0);
        }
      }
}

TEST(MultiBitQuant, SqnrOfAUniformSignal) {
  std::mt19937 rng(3);
  Tensor w = test::random_tensor({64, 256}, rng, -1.0f, 1.0f);  // uniform full-scale signal
  double previous = 0;
  for (int bits : {2, 4, 8}) {
    const double sqnr = quant_error(w, dequantize(quantize_weights(w, {bits, false, Granularity::per_tensor, 0}))).sqnr_db;
    // A uniform full-scale signal over 2^b - 1 steps: SQNR = 20 log10(2^b - 1) (about 6.02 b dB).
    EXPECT_NEAR(sqnr, 20 * std::log10((1 << bits) - 1.0), 0.5) << bits << " bits";
    EXPECT_GT(sqnr, previous);
    previous = sqnr;
  }
}

TEST(MultiBitQuant, OneBitIsCenteredSignWithAbsmeanScale) {
  Tensor w = Tensor::from_vector({1.0f, 2.0f, 3.0f, 6.0f}, {1, 4});  // mean 3, mean|w| 3
  const QuantizedWeights q = quantize_weights(w, {1, true, Granularity::per_tensor, 0});
  EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 0, 0, 1}));
  EXPECT_FLOAT_EQ(q.centers[0], 3.0f);
  EXPECT_EQ(dequantize(q).to_vector(), (std::vector<float>{-3, -3, -3, 3}));
  EXPECT_THROW(quantize_weights(w, {3, true, Granularity::per_tensor, 0}), Error);
  EXPECT_THROW(quantize_weights(w, {1, false, Granularity::per_tensor, 0}), Error);
}

TEST(QuantMetrics, KnownValues) {
  Tensor x = Tensor::from_vector({3, 4}, {2});
  Tensor y = Tensor::from_vector({3, 3}, {2});
  const QuantError e = quant_error(x, y);
  EXPECT_DOUBLE_EQ(e.mse, 0.5);
  EXPECT_NEAR(e.sqnr_db, 10 * std::log10(25.0), 1e-12);
  EXPECT_NEAR(e.cosine, 21.0 / (5.0 * std::sqrt(18.0)), 1e-12);
  EXPECT_NEAR(e.relative_error, 0.2, 1e-12);
  EXPECT_TRUE(std::isinf(quant_error(x, x).sqnr_db));
  EXPECT_THROW(quant_error(x, Tensor::zeros({3})), Error);
  const auto packings = packing_bits_per_weight(2560);
  ASSERT_FALSE(packings.empty());
  EXPECT_DOUBLE_EQ(packings[0].bits_per_weight, 2.0);  // 2560 = 10 whole blocks
  EXPECT_NEAR(packing_bits_per_weight(2500)[0].bits_per_weight, 2.0 * 2560 / 2500, 1e-12);
}

TEST(TernaryMatrix, PackUnpackRoundTripAndBadValues) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> d(-1, 1);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {5, 300}, {8, 256}, {13, 1001}}) {
    std::vector<int8_t> v(static_cast<size_t>(rows * cols));
    for (auto& x : v) x = static_cast<int8_t>(d(rng));
    const TernaryMatrix m = TernaryMatrix::pack(v.data(), rows, cols, 0.25f);
    EXPECT_EQ(m.unpack(), v);
    EXPECT_EQ(m.bytes() % 64, 0u);
  }
  std::vector<int8_t> bad = {0, 1, 2, -1};
  try {
    TernaryMatrix::pack(bad.data(), 2, 2, 1.0f);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[ternary] value 2 at row 1, column 0 is not -1, 0 or +1");
  }
}

TEST(BitLinear, MatchesFloatMathOnDequantizedOperands) {
  std::mt19937 rng(5);
  for (auto [tokens, rows, cols] : {std::tuple<int64_t, int64_t, int64_t>{1, 7, 300}, {9, 64, 2560}}) {
    Tensor w = test::random_tensor({rows, cols}, rng);
    Tensor x = test::random_tensor({tokens, cols}, rng);
    const TernaryMatrix m = TernaryMatrix::quantize(w);
    Tensor y = bitlinear(x, m);
    ASSERT_EQ(y.shape(), (Shape{tokens, rows}));
    // Reference: the same quantized operands multiplied in double.
    const TernaryWeights tw = quantize_ternary(w);
    QuantizedActivations q;
    const Tensor xc = x.contiguous();
    quantize_activations(xc.data_as<float>(), tokens, cols, cols, q);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t n = 0; n < rows; ++n) {
        double dot = 0;
        for (int64_t k = 0; k < cols; ++k) dot += tw.values[static_cast<size_t>(n * cols + k)] * q.row(t)[k];
        const double want = dot * q.dequant()[t] * tw.scales[0];
        ASSERT_NEAR(y.at({t, n}), want, 1e-5 * (1 + std::fabs(want)));
      }
    // And close to the float product it approximates (cosine similarity of the outputs).
    EXPECT_GT(quant_error(test::naive_matmul_t(x, w), y).cosine, 0.75);
  }
  // Per-channel scales are applied per output row.
  Tensor w = test::random_tensor({6, 256}, rng);
  const TernaryMatrix pc = TernaryMatrix::pack(quantize_ternary(w, Granularity::per_channel));
  Tensor x = test::random_tensor({2, 256}, rng);
  const TernaryMatrix one = TernaryMatrix::pack(pc.unpack().data(), 6, 256, 1.0f);
  const Tensor a = bitlinear(x, pc), b = bitlinear(x, one);
  for (int64_t n = 0; n < 6; ++n) EXPECT_FLOAT_EQ(a.at({1, n}), b.at({1, n}) * pc.row_scales()[static_cast<size_t>(n)]);
  EXPECT_THROW(bitlinear(Tensor::zeros({2, 255}), pc), Error);
}

}  // namespace
}  // namespace bitnet
