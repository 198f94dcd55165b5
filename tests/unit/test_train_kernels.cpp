// Every ISA variant of the train kernel family against the scalar reference, bit for bit (each element is
// the same IEEE operations in the same order), on awkward lengths and misaligned offsets; and the
// reference against the formulas it implements.
#include <bitnet/cpu.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "kernels/train.h"
#include "test_util.h"

namespace bitnet {
namespace {

using kernels::TrainKernels;

const std::vector<int64_t> kLengths = {1, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 129, 1000, 4099};

class TrainVariant : public ::testing::TestWithParam<Isa> {
 protected:
  const TrainKernels* variant() const { return kernels::train_family().variant(GetParam()); }
  const TrainKernels& ref() const { return *kernels::train_family().variant(Isa::ref); }
};

std::vector<float> random_values(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(TrainKernels, ReferenceFollowsTheFormulas) {
  const TrainKernels& k = *kernels::train_family().variant(Isa::ref);
  // Ties round to even: 0.5 -> 0, 1.5 -> 2 -> clamped 1, -0.5 -> 0; large values clamp.
  const std::vector<float> w = {0.5f, 1.5f, -0.5f, -1.5f, 0.49f, 0.51f, -3e9f, 7.0f, 0.0f, -0.0f};
  std::vector<int8_t> codes(w.size());
  k.ternary_codes(w.data(), static_cast<int64_t>(w.size()), 1.0f, codes.data());
  EXPECT_EQ(codes, (std::vector<int8_t>{0, 1, 0, -1, 0, 1, -1, 1, 0, 0}));
  std::vector<float> back(w.size());
  k.codes_to_f32(codes.data(), static_cast<int64_t>(codes.size()), 3.0f, back.data());
  EXPECT_EQ(back[1], 1.0f / 3.0f);
  EXPECT_EQ(back[3], -1.0f / 3.0f);
  // One AdamW step by hand (torch.optim.AdamW, step 1: bias corrections 1 - beta^1).
  float p = 0.5f, g = 0.2f, m = 0.0f, v = 0.0f;
  const kernels::AdamWArgs a{1.0f - 0.01f * 0.1f, 0.1f, 0.999f, 0.001f, std::sqrt(0.001f), 1e-8f, 0.01f / 0.1f};
  k.adamw(&p, &g, &m, &v, 1, a);
  const float want_m = 0.0f + 0.1f * (0.2f - 0.0f), want_v = 0.999f * 0.0f + 0.001f * 0.2f * 0.2f;
  EXPECT_EQ(m, want_m);
  EXPECT_EQ(v, want_v);
  EXPECT_EQ(p, 0.5f * a.decay - a.step_size * (want_m / (std::sqrt(want_v) / a.bc2_sqrt + 1e-8f)));
}

TEST_P(TrainVariant, AgreesWithReferenceBitForBit) {
  const TrainKernels* k = variant();
  if (k == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(11);
  for (int64_t n : kLengths)
    for (int64_t offset : {0, 1, 3}) {
      const auto sz = static_cast<size_t>(n + offset);
      const std::vector<float> w = random_values(sz, rng, -0.1f, 0.1f);
      const float inv = 1.0f / 0.037f;
      std::vector<int8_t> c1(sz), c2(sz);
      k->ternary_codes(w.data() + offset, n, inv, c1.data() + offset);
      ref().ternary_codes(w.data() + offset, n, inv, c2.data() + offset);
      ASSERT_EQ(c1, c2) << "ternary_codes n=" << n << " offset " << offset;

      std::vector<int8_t> q(sz);
      std::uniform_int_distribution<int> qd(-128, 127);
      for (auto& x : q) x = static_cast<int8_t>(qd(rng));
      std::vector<float> f1(sz), f2(sz);
      k->codes_to_f32(q.data() + offset, n, 41.3f, f1.data() + offset);
      ref().codes_to_f32(q.data() + offset, n, 41.3f, f2.data() + offset);
      for (size_t i = 0; i < sz; ++i) ASSERT_EQ(std::bit_cast<uint32_t>(f1[i]), std::bit_cast<uint32_t>(f2[i])) << i;

      const std::vector<float> g = random_values(sz, rng, -1.0f, 1.0f);
      std::vector<float> p1 = random_values(sz, rng, -1.0f, 1.0f), m1 = random_values(sz, rng, -0.1f, 0.1f),
                         v1 = random_values(sz, rng, 0.0f, 0.01f);
      std::vector<float> p2 = p1, m2 = m1, v2 = v1;
      const kernels::AdamWArgs a{0.9999f, 0.1f, 0.95f, 0.05f, 0.3f, 1e-8f, 3e-3f};
      k->adamw(p1.data() + offset, g.data() + offset, m1.data() + offset, v1.data() + offset, n, a);
      ref().adamw(p2.data() + offset, g.data() + offset, m2.data() + offset, v2.data() + offset, n, a);
      for (size_t i = 0; i < sz; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(p1[i]), std::bit_cast<uint32_t>(p2[i])) << "adamw p " << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(m1[i]), std::bit_cast<uint32_t>(m2[i])) << "adamw m " << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(v1[i]), std::bit_cast<uint32_t>(v2[i])) << "adamw v " << i;
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Isas, TrainVariant, ::testing::Values(Isa::avx2, Isa::avx512, Isa::neon),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace bitnet
