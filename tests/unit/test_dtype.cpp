#include <bitnet/dtype.h>
#include <bitnet/tensor.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "numpy_oracle.h"

namespace bitnet {
namespace {

// Edge values for conversions: zeros, subnormals (f32 and f16), the f16 range ends, exact ties for both
// f16 and bf16 rounding, infinities and NaNs, plus random values across many binades.
std::vector<float> edge_values() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 0.1f, 1.0f / 3.0f, 65504.0f, -65504.0f, 65519.99f, 65520.0f,
                          65536.0f, 1e10f, -1e10f, 6.103515625e-05f /* 2^-14 */, 6.0975552e-05f /* largest sub */,
                          5.9604645e-08f /* 2^-24 */, 2.9802322e-08f /* 2^-25: tie to 0 */, 2.9802326e-08f,
                          8.940697e-08f /* 1.5 * 2^-24: tie to even */, 1e-45f /* f32 subnormal */,
                          std::numeric_limits<float>::min(), std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::lowest(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                          -std::numeric_limits<float>::quiet_NaN()};
  // f16 ties: 1 + k * 2^-11 with k odd lies halfway between two halves.
  for (int k = 1; k < 16; k += 2) v.push_back(1.0f + static_cast<float>(k) * 0x1p-11f);
  // bf16 ties: 1 + k * 2^-8.
  for (int k = 1; k < 16; k += 2) v.push_back(1.0f + static_cast<float>(k) * 0x1p-8f);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> exp_dist(-30, 20);
  std::uniform_real_distribution<float> mant(-2.0f, 2.0f);
  for (int i = 0; i < 4000; ++i) v.push_back(std::ldexp(mant(rng), exp_dist(rng)));
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    if (!std::isnan(f)) v.push_back(f);
  }
  return v;
}

TEST(DType, InfoAndParse) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::u8), 1u);
  EXPECT_EQ(parse_dtype("bfloat16"), DType::bf16);
  EXPECT_EQ(parse_dtype("i32"), DType::i32);
  EXPECT_THROW(parse_dtype("f64"), Error);
  EXPECT_EQ(promote_types(DType::f16, DType::bf16), DType::f32);
  EXPECT_EQ(promote_types(DType::i8, DType::f16), DType::f16);
  EXPECT_EQ(promote_types(DType::u8, DType::i8), DType::i32);
}

TEST(DType, F16RoundTripsEveryHalfExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << h;
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(DType, F16HandPickedRounding) {
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);         // tie -> even (down)
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);     // tie -> even (up)
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                // tie at the top -> Inf
  EXPECT_EQ(f32_to_f16(65519.99f), 0x7bff);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);                // tie between 0 and the smallest subnormal
  EXPECT_EQ(f32_to_f16(0x1.8p-24f), 0x0002);              // tie -> even subnormal
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);         // bf16 tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to Inf
}

TEST(DType, F16MatchesNumPy) {
  BITNET_REQUIRE_ORACLE("numpy");
  const auto values = edge_values();
  const auto out = test::run_oracle("f16", test::as_bytes(values));
  ASSERT_EQ(out.size(), values.size() * 6);
  const auto* bits = reinterpret_cast<const uint16_t*>(out.data());
  const auto* back = reinterpret_cast<const float*>(out.data() + values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(f32_to_f16(values[i]), bits[i]) << "value " << values[i] << " (index " << i << ")";
    const float ours = f16_to_f32(bits[i]);
    if (std::isnan(back[i])) {
      EXPECT_TRUE(std::isnan(ours));
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(ours), std::bit_cast<uint32_t>(back[i])) << "half 0x" << std::hex << bits[i];
    }
  }
  // The tensor path (vectorized F16C where present) must agree on every non-NaN value.
  Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}).to(DType::f16);
  const auto* tb = t.data_as<uint16_t>();
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) continue;
    ASSERT_EQ(tb[i], bits[i]) << "tensor conversion of " << values[i];
  }
}

TEST(DType, BF16MatchesMlDtypes) {
  BITNET_REQUIRE_ORACLE("ml_dtypes");
  const auto values = edge_values();
  const auto out = test::run_oracle("bf16", test::as_bytes(values));
  ASSERT_EQ(out.size(), values.size() * 2);
  const auto* bits = reinterpret_cast<const uint16_t*>(out.data());
  Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}).to(DType::bf16);
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(values[i]))));
      EXPECT_EQ(f32_to_bf16(values[i]) & 0x8000, bits[i] & 0x8000) << "NaN sign";
      continue;
    }
    ASSERT_EQ(f32_to_bf16(values[i]), bits[i]) << "value " << values[i];
    ASSERT_EQ(t.data_as<uint16_t>()[i], bits[i]) << "tensor conversion of " << values[i];
  }
}

TEST(DType, IntegerConversionsTruncateAndSaturate) {
  Tensor x = Tensor::from_vector({-1.7f, 2.9f, 300.0f, -300.0f, std::nanf("")}, {5});
  Tensor i8 = x.to(DType::i8);
  EXPECT_EQ(i8.at({0}), -1);
  EXPECT_EQ(i8.at({1}), 2);
  EXPECT_EQ(i8.at({2}), 127);
  EXPECT_EQ(i8.at({3}), -128);
  EXPECT_EQ(i8.at({4}), 0);
  Tensor u8 = x.to(DType::u8);
  EXPECT_EQ(u8.at({2}), 255);
  EXPECT_EQ(u8.at({3}), 0);
}

}  // namespace
}  // namespace bitnet
