// QAT fake quantizers: exact values on hand-worked inputs, the grid and range each scheme promises,
// per-row / per-group scales, SQNR near the 6 dB-per-bit rule, and the STE gradient definition.
#include <bitnet/qat.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "test_util.h"

namespace bitnet::test {
namespace {

using nn::Granularity;
using nn::QuantSpec;

double sqnr_db(const Tensor& x, const Tensor& q) {
  const auto a = x.to_vector(), b = q.to_vector();
  double sig = 0.0, err = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    sig += static_cast<double>(a[i]) * a[i];
    err += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  }
  return 10.0 * std::log10(sig / err);
}

TEST(Qat, TernaryAbsmeanByHand) {
  const Tensor w = Tensor::from_vector({0.1f, -0.5f, 0.9f, 0.02f, -1.2f, 0.3f}, {2, 3});
  // mean|w| = 3.02 / 6; w / mean rounds to 0, -1, 2->1, 0, -2->-1, 1.
  const float inv = 1.0f / (3.02f / 6.0f);
  const float s = 1.0f / inv;
  const std::vector<float> want = {0.0f, -s, s, 0.0f, -s, s};
  EXPECT_EQ(nn::fake_quantize(w, QuantSpec::ternary()).to_vector(), want);
  // Per row: row 0 has mean 0.5, row 1 mean 0.50667.
  const std::vector<float> rows = nn::fake_quantize(w, QuantSpec::ternary(Granularity::per_row)).to_vector();
  EXPECT_FLOAT_EQ(rows[2], 1.5f / 3.0f);
  EXPECT_FLOAT_EQ(rows[4], -1.52f / 3.0f);
  EXPECT_EQ(rows[0], 0.0f);
}

TEST(Qat, BinarySignAroundMeanTimesAbsmean) {
  const Tensor w = Tensor::from_vector({0.4f, 0.6f, -0.2f, 1.0f}, {4});
  // mean = 0.45, mean|w| = 0.55: 0.4 is below the mean, so it maps to -0.55.
  const std::vector<float> got = nn::fake_quantize(w, QuantSpec::binary()).to_vector();
  EXPECT_EQ(got, (std::vector<float>{-0.55f, 0.55f, -0.55f, 0.55f}));
}

TEST(Qat, SymmetricInt8PerTokenMatchesReference) {
  std::mt19937 rng(21);
  const Tensor x = random_tensor({5, 33}, rng, -3, 3);
  const Tensor q = nn::fake_quantize(x, QuantSpec::int8_per_token());
  for (int64_t r = 0; r < 5; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < 33; ++c) amax = std::max(amax, std::fabs(static_cast<float>(x.at({r, c}))));
    const float inv = 127.0f / amax;
    for (int64_t c = 0; c < 33; ++c) {
      const auto xv = static_cast<float>(x.at({r, c}));
      EXPECT_EQ(static_cast<float>(q.at({r, c})), std::clamp(std::nearbyint(xv * inv), -128.0f, 127.0f) / inv);
      EXPECT_LE(std::fabs(q.at({r, c}) - xv), 0.5 / inv + 1e-6);
    }
  }
}

TEST(Qat, RoundsHalfToEvenLikeTorch) {
  // max|x| = 127 makes the int8 scale exactly 1, so x itself is rounded: ties go to the even integer.
  const Tensor x = Tensor::from_vector({0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, 127.0f, -127.0f, 3.4999f}, {10});
  EXPECT_EQ(nn::fake_quantize(x, QuantSpec::symmetric(8)).to_vector(),
            (std::vector<float>{0.0f, 2.0f, 2.0f, 0.0f, -2.0f, -2.0f, 126.0f, 127.0f, -127.0f, 3.0f}));
}

TEST(Qat, GridSizesAndSqnrPerBits) {
  std::mt19937 rng(22);
  const Tensor x = random_tensor({8, 256}, rng, -1, 1);
  for (int bits : {2, 4, 8}) {
    for (bool asym : {false, true}) {
      for (auto g : {Granularity::per_tensor, Granularity::per_row, Granularity::per_group}) {
        const QuantSpec spec = asym ? QuantSpec::asymmetric(bits, g, 64) : QuantSpec::symmetric(bits, g, 64);
        const Tensor q = nn::fake_quantize(x, spec);
        // Each group holds at most 2^bits distinct values.
        const int64_t group = g == Granularity::per_tensor ? 8 * 256 : g == Granularity::per_row ? 256 : 64;
        const auto v = q.to_vector();
        for (size_t start = 0; start < v.size(); start += static_cast<size_t>(group)) {
          std::set<float> distinct(v.begin() + static_cast<long>(start), v.begin() + static_cast<long>(start + group));
          EXPECT_LE(distinct.size(), size_t{1} << bits) << spec.str();
        }
        // Uniform data: about 6.02 dB per bit. The 2-bit symmetric grid {-2, -1, 0, 1} * max|x| puts its -2
        // level outside the data, so it gets only ~6 dB.
        EXPECT_GT(sqnr_db(x, q), bits == 2 && !asym ? 5.0 : 6.02 * bits - 4.0) << spec.str();
      }
    }
  }
  EXPECT_GT(sqnr_db(x, nn::fake_quantize(x, QuantSpec::ternary())), 3.0);
}

TEST(Qat, AsymmetricKeepsAnOffsetRange) {
  // All-positive data: an asymmetric grid spans [min, max], so the error stays below half a step.
  std::mt19937 rng(23);
  const Tensor x = random_tensor({4, 16}, rng, 2.0f, 3.0f);
  const Tensor q = nn::fake_quantize(x, QuantSpec::asymmetric(4, Granularity::per_row));
  for (int64_t r = 0; r < 4; ++r) {
    double lo = 1e9, hi = -1e9;
    for (int64_t c = 0; c < 16; ++c) lo = std::min(lo, x.at({r, c})), hi = std::max(hi, x.at({r, c}));
    const double step = (hi - lo) / 15.0;
    for (int64_t c = 0; c < 16; ++c) EXPECT_LE(std::fabs(q.at({r, c}) - x.at({r, c})), 0.5 * step + 1e-6);
  }
}

TEST(Qat, ZerosStayZeroAndBadSpecsThrow) {
  const Tensor z = Tensor::zeros({2, 8});
  for (const QuantSpec& s : {QuantSpec::ternary(), QuantSpec::int8_per_token(), QuantSpec::asymmetric(4)})
    for (float v : nn::fake_quantize(z, s).to_vector()) EXPECT_EQ(v, 0.0f) << s.str();
  EXPECT_THROW(QuantSpec::symmetric(1), Error);
  EXPECT_THROW(QuantSpec::symmetric(4, Granularity::per_group, 0), Error);
  EXPECT_THROW(nn::fake_quantize(Tensor::ones({2, 10}), QuantSpec::symmetric(4, Granularity::per_group, 4)), Error);
  EXPECT_EQ(QuantSpec::asymmetric(4, Granularity::per_group, 128).str(), "int4-asym/group128");
  for (const QuantSpec& s : {QuantSpec::none(), QuantSpec::binary(), QuantSpec::ternary(Granularity::per_row),
                             QuantSpec::int8_per_token(), QuantSpec::asymmetric(4, Granularity::per_group, 128),
                             QuantSpec::symmetric(2, Granularity::per_group, 32)})
    EXPECT_EQ(QuantSpec::parse(s.str()), s) << s.str();
  EXPECT_EQ(QuantSpec::parse("ternary"), QuantSpec::ternary());
  for (const char* bad : {"int", "int1", "int4/group", "int4/groupx", "tern", "int8/per_col", "int99"})
    EXPECT_THROW(QuantSpec::parse(bad), Error) << bad;
}

TEST(Qat, SteGradientIsIdentity) {
  std::mt19937 rng(24);
  const Tensor w = random_tensor({4, 6}, rng);
  const Tensor r = random_tensor({4, 6}, rng);
  for (const QuantSpec& s : {QuantSpec::ternary(), QuantSpec::binary(), QuantSpec::symmetric(4, Granularity::per_row)}) {
    autograd::Var wv = autograd::Var::parameter(w);
    const autograd::Var q = nn::fake_quantize(wv, s);
    EXPECT_EQ(q.value().to_vector(), nn::fake_quantize(w, s).to_vector()) << s.str();
    q.backward(r);
    EXPECT_EQ(wv.grad().to_vector(), r.to_vector()) << s.str();
  }
}

}  // namespace
}  // namespace bitnet::test
