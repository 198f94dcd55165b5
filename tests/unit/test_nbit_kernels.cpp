// n-bit (1/2/4/8) weight kernels: packing round trip, every variant bit for bit against the reference, and
// the reference against float math on the dequantized weights.
#include <bitnet/cpu.h>
#include <bitnet/nbit.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "kernels/nbit.h"
#include "test_util.h"

namespace bitnet {
namespace {

struct NbitCase {
  QuantSpec spec;
  int64_t rows, cols, tokens;
};

std::vector<NbitCase> nbit_cases() {
  std::vector<NbitCase> out;
  for (int bits : {1, 2, 4, 8})
    for (Granularity g : {Granularity::per_tensor, Granularity::per_channel, Granularity::per_group})
      for (bool sym : {true, false}) {
        if (bits == 1 && !sym) continue;
        out.push_back({{bits, sym, g, g == Granularity::per_group ? 64 : 0}, 7, g == Granularity::per_group ? 320 : 300, 3});
      }
  return out;
}

class NbitVariant : public ::testing::TestWithParam<Isa> {};

TEST_P(NbitVariant, MatchesReferenceAndFloatMath) {
  const auto* variant = kernels::nbit_family().variant(GetParam());
  if (variant == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(11);
  for (const NbitCase& s : nbit_cases()) {
    const Tensor w = test::random_tensor({s.rows, s.cols}, rng);
    const QuantizedWeights q = quantize_weights(w, s.spec);
    const NbitMatrix m = NbitMatrix::pack(q);
    ASSERT_EQ(m.unpack_codes(), q.codes);
    const Tensor x = test::random_tensor({s.tokens, s.cols}, rng);
    QuantizedActivations qa;
    quantize_activations(x.data_as<float>(), s.tokens, s.cols, s.cols, qa);
    std::vector<float> want(static_cast<size_t>(s.tokens * s.rows)), got(want.size());
    force_isa(Isa::ref);
    nbit_matmul(m, qa, want.data(), s.rows);
    force_isa(GetParam());
    nbit_matmul(m, qa, got.data(), s.rows);
    force_isa(std::nullopt);
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << s.spec.bits << " bits " << granularity_name(s.spec.granularity) << " i=" << i;
    const Tensor deq = dequantize(q);
    for (int64_t t = 0; t < s.tokens; ++t)
      for (int64_t n = 0; n < s.rows; ++n) {
        double dot = 0;
        for (int64_t k = 0; k < s.cols; ++k) dot += deq.at({n, k}) * qa.row(t)[k];
        dot *= qa.dequant()[t];
        ASSERT_NEAR(want[static_cast<size_t>(t * s.rows + n)], dot, 1e-4 * (1 + std::fabs(dot)))
            << s.spec.bits << " bits " << (s.spec.symmetric ? "sym " : "asym ") << granularity_name(s.spec.granularity);
      }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, NbitVariant, ::testing::Values(Isa::ref, Isa::avx2, Isa::avx512, Isa::neon),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(NbitMatrix, RejectsGroupsTheKernelCannotTile) {
  std::mt19937 rng(1);
  const Tensor w = test::random_tensor({2, 96}, rng);
  EXPECT_THROW(NbitMatrix::pack(quantize_weights(w, {4, true, Granularity::per_group, 32})), Error);
}

}  // namespace
}  // namespace bitnet
