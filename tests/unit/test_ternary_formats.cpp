// Ternary file layouts: hand-checked bytes from the spec, byte-exact chains between every layout, gguf.quants
// (PyPI) as the oracle for TQ1_0 / TQ2_0, and the absmean formula against NumPy.
#include <bitnet/dtype.h>
#include <bitnet/ternary_formats.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "io_test_util.h"
#include "numpy_oracle.h"

namespace bitnet {
namespace {

std::vector<int8_t> random_ternary(int64_t n, std::mt19937& rng, double p_zero = 0.4) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int8_t> v(static_cast<size_t>(n));
  for (auto& x : v) {
    const double r = u(rng);
    x = r < p_zero ? 0 : (r < (1 + p_zero) / 2 ? 1 : -1);
  }
  return v;
}

TEST(TernaryFormats, HfPackedMatchesSpecLayout) {
  // rows = 8 (R = 2), cols = 1: byte r holds rows r, r+2, r+4, r+6 at shifts 0, 2, 4, 6; code = w + 1.
  const std::vector<int8_t> v = {-1, 0, 1, 1, 0, -1, 1, 0};
  const auto p = pack_ternary(TernaryFormat::hf_u8, v, 8, 1, 0.0f);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], (0 << 0) | (2 << 2) | (1 << 4) | (2 << 6));  // rows 0, 2, 4, 6: -1, 1, 0, 1
  EXPECT_EQ(p[1], (1 << 0) | (2 << 2) | (0 << 4) | (1 << 6));  // rows 1, 3, 5, 7: 0, 1, -1, 0
  EXPECT_EQ(unpack_ternary(TernaryFormat::hf_u8, p, 8, 1).values, v);
}

TEST(TernaryFormats, I2SMatchesSpecLayout) {
  // One 128-element block: element j in byte j % 32 at shift 6 - 2 * (j / 32); tail = f32 scale + 28 zeros.
  std::vector<int8_t> v(128, 0);
  v[0] = 1;    // byte 0, bits 7-6 -> code 2
  v[32] = -1;  // byte 0, bits 5-4 -> code 0
  v[97] = 1;   // byte 1, bits 1-0 -> code 2
  const auto p = pack_ternary(TernaryFormat::i2_s, v, 1, 128, 1.5f);
  ASSERT_EQ(p.size(), 64u);
  EXPECT_EQ(p[0], (2 << 6) | (0 << 4) | (1 << 2) | 1);
  EXPECT_EQ(p[1], (1 << 6) | (1 << 4) | (1 << 2) | 2);
  EXPECT_EQ(p[2], 0x55);
  float s;
  std::memcpy(&s, p.data() + 32, 4);
  EXPECT_EQ(s, 1.5f);
  for (int i = 36; i < 64; ++i) EXPECT_EQ(p[i], 0) << i;
  const TernaryTensor t = unpack_ternary(TernaryFormat::i2_s, p, 1, 128);
  EXPECT_EQ(t.values, v);
  EXPECT_EQ(t.scale, 1.5f);
}

TEST(TernaryFormats, Tq2Tq1MatchSpecLayout) {
  std::vector<int8_t> v(256, 0);
  v[0] = 1;
  v[32] = -1;
  v[128 + 5] = 1;
  const auto q2 = pack_ternary(TernaryFormat::tq2_0, v, 1, 256, 0.5f);
  ASSERT_EQ(q2.size(), 66u);
  EXPECT_EQ(q2[0], 2 | (0 << 2) | (1 << 4) | (1 << 6));  // elements 0, 32, 64, 96
  EXPECT_EQ(q2[32 + 5], 2 | (1 << 2) | (1 << 4) | (1 << 6));
  EXPECT_EQ(f16_to_f32(uint16_t(q2[64] | q2[65] << 8)), 0.5f);
  const auto q1 = pack_ternary(TernaryFormat::tq1_0, v, 1, 256, 0.5f);
  ASSERT_EQ(q1.size(), 54u);
  // byte 0 holds elements 0, 32, 64, 96, 128 as trits 2, 0, 1, 1, 1 -> q = 2*81 + 0 + 9 + 3 + 1 = 175.
  EXPECT_EQ(q1[0], (175 * 256 + 242) / 243);
  EXPECT_EQ(unpack_ternary(TernaryFormat::tq1_0, q1, 1, 256).values, v);
  EXPECT_EQ(unpack_ternary(TernaryFormat::tq2_0, q2, 1, 256).scale, 0.5f);
}

TEST(TernaryFormats, EveryLayoutRoundTripsAndChainsByteExact) {
  std::mt19937 rng(7);
  const int64_t rows = 12, cols = 512;
  const auto v = random_ternary(rows * cols, rng);
  const float scale = 1.5546875f;  // a bf16 value (2B4T weight_scale magnitude), exact in fp16 and f32
  const auto hf = pack_ternary(TernaryFormat::hf_u8, v, rows, cols, 0);
  for (auto f : {TernaryFormat::hf_u8, TernaryFormat::tq1_0, TernaryFormat::tq2_0, TernaryFormat::i2_s}) {
    const auto packed = pack_ternary(f, v, rows, cols, scale);
    EXPECT_EQ(packed.size(), ternary_nbytes(f, rows, cols));
    const TernaryTensor t = unpack_ternary(f, packed, rows, cols);
    EXPECT_EQ(t.values, v) << ternary_format_name(f);
    if (f != TernaryFormat::hf_u8) {
      EXPECT_EQ(t.scale, scale) << ternary_format_name(f);
    }
    EXPECT_EQ(pack_ternary(f, t.values, rows, cols, t.scale), packed) << ternary_format_name(f);
  }
  // HF packed -> TQ2_0 -> TQ1_0 -> I2_S -> HF packed, through the canonical form only.
  TernaryTensor t = unpack_ternary(TernaryFormat::hf_u8, hf, rows, cols);
  t.scale = scale;
  for (auto f : {TernaryFormat::tq2_0, TernaryFormat::tq1_0, TernaryFormat::i2_s}) {
    const auto b = pack_ternary(f, t.values, rows, cols, t.scale);
    t = unpack_ternary(f, b, rows, cols);
  }
  EXPECT_EQ(t.scale, scale);
  EXPECT_EQ(pack_ternary(TernaryFormat::hf_u8, t.values, rows, cols, 0), hf);
}

TEST(TernaryFormats, TqMatchesGgufQuants) {
  BITNET_REQUIRE_ORACLE("gguf");
  std::mt19937 rng(11);
  const int64_t rows = 4, cols = 512;
  auto v = random_ternary(rows * cols, rng);
  std::fill(v.begin() + 256, v.begin() + 512, 0);  // one all-zero block: d = 0 there
  const float scale = 0.734375f;
  std::vector<float> w(v.size());
  for (size_t i = 0; i < v.size(); ++i) w[i] = v[i] * scale;
  std::vector<uint8_t> wbytes(w.size() * 4);
  std::memcpy(wbytes.data(), w.data(), wbytes.size());
  for (auto [f, cmd] : {std::pair{TernaryFormat::tq2_0, "tq2_0"}, std::pair{TernaryFormat::tq1_0, "tq1_0"}}) {
    const auto ours = pack_ternary(f, v, rows, cols, scale);
    EXPECT_EQ(test::run_model_oracle(cmd, wbytes), ours) << cmd;
    const auto deq = test::run_model_oracle(std::string(cmd) + "_deq", ours);
    ASSERT_EQ(deq.size(), w.size() * 4);
    std::vector<float> back(w.size());
    std::memcpy(back.data(), deq.data(), deq.size());
    EXPECT_EQ(back, w) << cmd;
  }
}

// Tensors large enough that decoding and the code-3 test run in several chunks on the thread pool: every layout
// gives back the values exactly, and of two bad codes in different chunks the error names the first.
TEST(TernaryFormats, LargeTensorsUnpackExactlyAndNameTheFirstBadCode) {
  std::mt19937 rng(21);
  const int64_t rows = 72, cols = 7936;  // 571392 elements; cols a multiple of 256, rows of 4
  const auto v = random_ternary(rows * cols, rng);
  for (TernaryFormat f : {TernaryFormat::hf_u8, TernaryFormat::tq2_0, TernaryFormat::tq1_0, TernaryFormat::i2_s}) {
    const auto bytes = pack_ternary(f, v, rows, cols, 0.5f);
    const TernaryTensor t = unpack_ternary(f, bytes, rows, cols);
    EXPECT_EQ(t.values, v) << ternary_format_name(f);
    EXPECT_EQ(t.scale, f == TernaryFormat::hf_u8 ? 0.0f : 0.5f) << ternary_format_name(f);
  }
  auto i2 = pack_ternary(TernaryFormat::i2_s, v, rows, cols, 0.5f);
  for (int64_t e : {int64_t{500001}, int64_t{300077}}) {  // I2_S: element e is in byte 32 (e / 128) + e % 32
    const int64_t j = e % 128;
    i2[static_cast<size_t>(32 * (e / 128) + j % 32)] |= static_cast<uint8_t>(3 << (6 - 2 * (j / 32)));
  }
  const std::string msg = test::error_of([&] { unpack_ternary(TernaryFormat::i2_s, i2, rows, cols); });
  EXPECT_NE(msg.find("element 300077 (row 37, col 6445)"), std::string::npos) << msg;
}

TEST(TernaryFormats, StrictUnpackRefusesWhatHasNoCanonicalForm) {
  std::vector<uint8_t> hf(4, 0xFF);  // code 3 everywhere
  std::string msg = test::error_of([&] { unpack_ternary(TernaryFormat::hf_u8, hf, 4, 4); });
  EXPECT_NE(msg.find("code 3"), std::string::npos) << msg;
  const TernaryReport r = inspect_ternary(TernaryFormat::hf_u8, hf, 4, 4);
  EXPECT_EQ(r.invalid_codes, 16);

  std::mt19937 rng(3);
  auto v = random_ternary(512, rng, 0.0);
  auto q2 = pack_ternary(TernaryFormat::tq2_0, v, 1, 512, 1.0f);
  const uint16_t other = f32_to_f16(2.0f);
  std::memcpy(q2.data() + 66 + 64, &other, 2);  // second block: another scale
  msg = test::error_of([&] { unpack_ternary(TernaryFormat::tq2_0, q2, 1, 512); });
  EXPECT_NE(msg.find("block 1"), std::string::npos) << msg;
  EXPECT_EQ(inspect_ternary(TernaryFormat::tq2_0, q2, 1, 512).distinct_scales, 2);

  const uint16_t nan = 0x7e00;
  std::memcpy(q2.data() + 64, &nan, 2);
  EXPECT_EQ(inspect_ternary(TernaryFormat::tq2_0, q2, 1, 512).nonfinite_scales, 1);

  v[5] = 2;
  EXPECT_THROW(pack_ternary(TernaryFormat::i2_s, v, 1, 512, 1.0f), Error);
  EXPECT_THROW(pack_ternary(TernaryFormat::tq2_0, v, 2, 256, 1.0f), Error);
  EXPECT_THROW(ternary_nbytes(TernaryFormat::tq1_0, 4, 100), Error);
  EXPECT_THROW(ternary_nbytes(TernaryFormat::hf_u8, 6, 256), Error);
  EXPECT_THROW(unpack_ternary(TernaryFormat::i2_s, std::vector<uint8_t>(10), 1, 128), Error);
}

TEST(TernaryFormats, ScaleConventions) {
  EXPECT_EQ(hf_scale_to_canonical(1.5f, ScaleConvention::multiply), 1.5f);
  EXPECT_EQ(hf_scale_to_canonical(4.0f, ScaleConvention::divide), 0.25f);
  EXPECT_EQ(canonical_to_hf_scale(0.25f, ScaleConvention::divide), 4.0f);
}

TEST(TernaryFormats, AbsmeanMatchesReferenceFormula) {
  BITNET_REQUIRE_ORACLE("numpy");
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.3f);
  const int64_t rows = 16, cols = 96;
  std::vector<float> w(rows * cols);
  for (auto& x : w) x = nd(rng);
  // Ties of round-half-even: values that land exactly on ±0.5 after scaling.
  TernaryTensor first = quantize_absmean(w, rows, cols);
  w[0] = 0.5f * first.scale;
  w[1] = -0.5f * first.scale;
  w[2] = 1.5f * first.scale;
  std::vector<uint8_t> in(16 + w.size() * 4);
  std::memcpy(in.data(), &rows, 8);
  std::memcpy(in.data() + 8, &cols, 8);
  std::memcpy(in.data() + 16, w.data(), w.size() * 4);
  const auto out = test::run_model_oracle("absmean", in);
  ASSERT_EQ(out.size(), w.size() + 4);
  const TernaryTensor t = quantize_absmean(w, rows, cols);
  float scale;
  std::memcpy(&scale, out.data() + w.size(), 4);
  EXPECT_EQ(t.scale, scale);
  EXPECT_EQ(std::memcmp(t.values.data(), out.data(), w.size()), 0);
  int zeros = 0;
  for (auto x : t.values) zeros += x == 0;
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, rows * cols);

  // bf16 input goes through the same formula.
  std::vector<uint16_t> b(w.size());
  std::vector<float> wb(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    b[i] = f32_to_bf16(w[i]);
    wb[i] = bf16_to_f32(b[i]);
  }
  const TernaryTensor tb = quantize_absmean_bf16(b, rows, cols);
  const TernaryTensor tf = quantize_absmean(wb, rows, cols);
  EXPECT_EQ(tb.values, tf.values);
  EXPECT_EQ(tb.scale, tf.scale);
}

TEST(TernaryFormats, AbsmeanEdgeCases) {
  // All zero: the 1e-5 clamp keeps the scale finite and every value 0.
  const std::vector<float> zeros(64, 0.0f);
  const TernaryTensor z = quantize_absmean(zeros, 8, 8);
  EXPECT_EQ(z.scale, 1e-5f);
  for (auto x : z.values) EXPECT_EQ(x, 0);
  std::vector<float> bad(64, 1.0f);
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize_absmean(bad, 8, 8), Error);
  // Already ternary floats are recognised; others are not.
  std::vector<float> tern = {0.5f, -0.5f, 0.0f, 0.5f};
  TernaryTensor d;
  ASSERT_TRUE(detect_ternary_float(tern, 2, 2, &d));
  EXPECT_EQ(d.scale, 0.5f);
  EXPECT_EQ(d.values, (std::vector<int8_t>{1, -1, 0, 1}));
  tern[2] = 0.25f;
  EXPECT_FALSE(detect_ternary_float(tern, 2, 2, nullptr));
}

}  // namespace
}  // namespace bitnet
