// Every ternary kernel variant against the scalar reference, bit for bit, in both packings (2-bit and base-3),
// and the reference against an independent dot product over the unpacked int8 weights: awkward shapes (base-3
// superblocks with and without 2-bit tail blocks), row sub-ranges, 1 and many tokens, padded and misaligned
// activation rows, extreme activations and all-zero / all-one weight rows.
#include <bitnet/cpu.h>
#include <bitnet/quant.h>
#include <bitnet/ternary.h>
#include <bitnet/thread_pool.h>
#include <gtest/gtest.h>

#include "test_util.h"

#include <bit>
#include <random>

#include "kernels/ternary.h"
#include "kernels/ternary_base3.h"

namespace bitnet {
namespace {

struct Case {
  int64_t rows, cols, tokens;
};

// Weights with special rows: row 0 all zero, row 1 all +1, row 2 all -1 (when present).
std::vector<int8_t> random_weights(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(-1, 1);
  std::vector<int8_t> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = static_cast<int8_t>(d(rng));
  for (int64_t k = 0; k < cols; ++k) {
    w[static_cast<size_t>(k)] = 0;
    if (rows > 1) w[static_cast<size_t>(cols + k)] = 1;
    if (rows > 2) w[static_cast<size_t>(2 * cols + k)] = -1;
  }
  return w;
}

// Activations: token 0 all +127, token 1 all -128, token 2 all zero, the rest random.
struct Activations {
  std::vector<int8_t> storage;
  int8_t* x;
  int64_t stride;
  std::vector<int32_t> sums;
  std::vector<float> scale;
};

Activations random_activations(int64_t tokens, int64_t cols, int64_t k_pad, std::mt19937& rng) {
  Activations a;
  a.stride = k_pad + 3;  // rows deliberately not 64-byte aligned
  a.storage.assign(static_cast<size_t>(tokens * a.stride + 1), 0);
  a.x = a.storage.data() + 1;
  std::uniform_int_distribution<int> d(-128, 127);
  std::uniform_real_distribution<float> s(1e-3f, 1.0f);
  for (int64_t t = 0; t < tokens; ++t) {
    int32_t sum = 0;
    for (int64_t k = 0; k < cols; ++k) {
      const int v = t == 0 ? 127 : t == 1 ? -128 : t == 2 ? 0 : d(rng);
      a.x[t * a.stride + k] = static_cast<int8_t>(v);
      sum += v;
    }
    a.sums.push_back(sum);
    a.scale.push_back(s(rng));
  }
  return a;
}

std::vector<float> run(const kernels::TernaryKernels& k, const TernaryMatrix& m, const Activations& a,
                       int64_t tokens, int64_t row_begin, int64_t row_end) {
  const int64_t y_stride = m.rows() + 5;
  std::vector<float> y(static_cast<size_t>(tokens * y_stride), -7.0f);
  kernels::TernaryGemmArgs args{m.data(), m.k_blocks(), a.x, a.stride, a.sums.data(), a.scale.data(),
                                y.data(), y_stride, row_begin, row_end, tokens};
  (m.packing() == TernaryPacking::base3 ? k.gemm_base3 : k.gemm)(args);
  return y;
}

class TernaryVariant : public ::testing::TestWithParam<Isa> {};

TEST_P(TernaryVariant, MatchesReferenceBitForBit) {
  const auto* variant = kernels::ternary_family().variant(GetParam());
  if (variant == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " ternary kernel is not runnable on this CPU";
  const auto& ref = *kernels::ternary_family().variant(Isa::ref);
  std::mt19937 rng(static_cast<unsigned>(GetParam()) + 17);
  // Base-3 superblocks hold 1280 weights: 1280 and 2560 are superblocks only, 1281 one with a partial tail block,
  // 2860 two with a partial one, 6912 five with two tail blocks (2B4T's down projection).
  const Case cases[] = {{1, 1, 1},     {3, 5, 2},    {4, 256, 1},    {5, 257, 7},   {7, 511, 6},  {16, 768, 13},
                        {17, 1000, 3}, {33, 300, 12}, {9, 2560, 1},  {6, 64, 25},   {5, 1280, 3}, {13, 1281, 9},
                        {7, 2860, 1},  {10, 2860, 5}, {8, 6912, 1},  {3, 3839, 4}};
  std::vector<std::pair<Case, TernaryPacking>> runs;
  for (const auto& c : cases)
    for (const TernaryPacking p : {TernaryPacking::two_bit, TernaryPacking::base3}) runs.emplace_back(c, p);
  for (const auto& [c, packing] : runs) {
    const auto w = random_weights(c.rows, c.cols, rng);
    const TernaryMatrix m = TernaryMatrix::pack(w.data(), c.rows, c.cols, 1.0f, packing);
    ASSERT_EQ(m.unpack(), w) << ternary_packing_name(packing) << " rows=" << c.rows << " cols=" << c.cols;
    const Activations a = random_activations(c.tokens, c.cols, m.k_blocks() * 256, rng);
    for (auto [b, e] : {std::pair<int64_t, int64_t>{0, c.rows}, {c.rows / 3, c.rows - c.rows / 4}}) {
      const auto want = run(ref, m, a, c.tokens, b, e);
      const auto got = run(*variant, m, a, c.tokens, b, e);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
            << isa_name(GetParam()) << " " << ternary_packing_name(packing) << " rows=" << c.rows
            << " cols=" << c.cols << " tokens=" << c.tokens
            << " range=[" << b << "," << e << ") index " << i;
    }
    if (GetParam() != Isa::ref) continue;
    // The reference against a dot product over the unpacked weights (this also checks the packing).
    const auto y = run(ref, m, a, c.tokens, 0, c.rows);
    for (int64_t t = 0; t < c.tokens; ++t)
      for (int64_t n = 0; n < c.rows; ++n) {
        int64_t dot = 0;
        for (int64_t k = 0; k < c.cols; ++k) dot += w[static_cast<size_t>(n * c.cols + k)] * a.x[t * a.stride + k];
        ASSERT_EQ(y[static_cast<size_t>(t * (c.rows + 5) + n)], static_cast<float>(dot) * a.scale[static_cast<size_t>(t)]);
      }
  }
}

// One token at the largest sums the int32 accumulators meet (every weight +1 or -1, every activation -128 or 127,
// a long row): exact in every variant, whatever order or scaling of partial sums it uses.
TEST_P(TernaryVariant, OneTokenExtremesAreExact) {
  const auto* variant = kernels::ternary_family().variant(GetParam());
  if (variant == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " ternary kernel is not runnable on this CPU";
  const int64_t rows = 9, cols = 65536 + 100;
  std::vector<int8_t> w(static_cast<size_t>(rows * cols));
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t k = 0; k < cols; ++k) w[static_cast<size_t>(n * cols + k)] = static_cast<int8_t>(n % 2 ? 1 : -1);
  using P = TernaryPacking;
  for (const auto& [packing, v] : {std::pair{P::two_bit, -128}, {P::two_bit, 127}, {P::base3, -128}, {P::base3, 127}}) {
    const TernaryMatrix m = TernaryMatrix::pack(w.data(), rows, cols, 1.0f, packing);
    Activations a;
    a.stride = m.k_blocks() * 256;
    a.storage.assign(static_cast<size_t>(a.stride), 0);
    std::fill_n(a.storage.begin(), cols, static_cast<int8_t>(v));
    a.x = a.storage.data();
    a.sums = {static_cast<int32_t>(v * cols)};
    a.scale = {1.0f};
    const auto y = run(*variant, m, a, 1, 0, rows);
    for (int64_t n = 0; n < rows; ++n)
      ASSERT_EQ(y[static_cast<size_t>(n)], static_cast<float>((n % 2 ? 1 : -1) * int64_t{v} * cols))
          << isa_name(GetParam()) << " " << ternary_packing_name(packing) << " activation " << v << " row " << n;
  }
}

TEST_P(TernaryVariant, LeavesOtherRowsUntouched) {
  const auto* variant = kernels::ternary_family().variant(GetParam());
  if (variant == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " ternary kernel is not runnable on this CPU";
  std::mt19937 rng(3);
  const auto w = random_weights(20, 1300, rng);
  for (const TernaryPacking packing : {TernaryPacking::two_bit, TernaryPacking::base3}) {
    const TernaryMatrix m = TernaryMatrix::pack(w.data(), 20, 1300, 1.0f, packing);
    const Activations a = random_activations(3, 1300, m.k_blocks() * 256, rng);
    for (int64_t tokens : {1, 3}) {
      const auto y = run(*variant, m, a, tokens, 5, 11);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t n = 0; n < 25; ++n)
          if (n < 5 || n >= 11) {
            EXPECT_EQ(y[static_cast<size_t>(t * 25 + n)], -7.0f) << ternary_packing_name(packing);
          }
    }
  }
}

// The base-3 packing's byte lookup: every tuple, then random tuples at lengths around the 64-byte vectors, from
// misaligned addresses, and nothing written past n.
TEST_P(TernaryVariant, EncodesBase3LikeTheTable) {
  const auto* variant = kernels::ternary_family().variant(GetParam());
  if (variant == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " ternary kernel is not runnable on this CPU";
  std::vector<uint8_t> all(243), bytes(243);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(i);
  variant->encode_base3(all.data(), bytes.data(), 243);
  for (size_t i = 0; i < all.size(); ++i) {  // the byte decodes back to the tuple
    const auto c = kernels::base3_decode(kernels::kBase3, bytes[i]);
    ASSERT_EQ(c[0] + 3 * c[1] + 9 * c[2] + 27 * c[3] + 81 * c[4], static_cast<int>(i)) << "tuple " << i;
  }
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> d(0, 242);
  for (int64_t n : {0, 1, 63, 64, 65, 127, 200, 1001}) {
    std::vector<uint8_t> in(static_cast<size_t>(n) + 3), out(static_cast<size_t>(n) + 3 + 64, 0xa5);
    for (auto& v : in) v = static_cast<uint8_t>(d(rng));
    variant->encode_base3(in.data() + 3, out.data() + 1, n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(out[static_cast<size_t>(i + 1)], kernels::kBase3.encode[in[static_cast<size_t>(i + 3)]]) << "n " << n;
    EXPECT_EQ(out[0], 0xa5);
    for (size_t i = static_cast<size_t>(n) + 1; i < out.size(); ++i) ASSERT_EQ(out[i], 0xa5) << "n " << n << ", " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, TernaryVariant, ::testing::Values(Isa::ref, Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::neon),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// Several products in one region (q/k/v, gate/up) give exactly what each gives alone, whatever the pool and
// whatever their packings.
TEST(TernaryMatmul, FusedProductsEqualSeparateOnes) {
  std::mt19937 rng(11);
  const int64_t cols = 1300;  // a partial last block (in base3: a superblock and a tail block)
  const int64_t rows[] = {37, 8, 130};
  std::vector<TernaryMatrix> ms;
  for (int64_t r : rows)  // the packings mixed in one call
    ms.push_back(TernaryMatrix::pack(random_weights(r, cols, rng).data(), r, cols, 0.25f + r,
                                     r == 8 ? TernaryPacking::base3 : TernaryPacking::two_bit));
  for (int64_t tokens : {1, 3, 70}) {
    std::vector<float> x(static_cast<size_t>(tokens * cols));
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (auto& v : x) v = d(rng);
    QuantizedActivations q;
    quantize_activations(x.data(), tokens, cols, cols, q);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<std::vector<float>> fused(3), alone(3);
      std::vector<TernaryProduct> products;
      for (size_t i = 0; i < 3; ++i) {
        fused[i].assign(static_cast<size_t>(tokens * rows[i]), -1.0f);
        alone[i].assign(fused[i].size(), -2.0f);
        products.push_back({&ms[i], fused[i].data(), rows[i]});
        ternary_matmul(ms[i], q, alone[i].data(), rows[i], pool);
      }
      ternary_matmul(products, q, pool);
      for (size_t i = 0; i < 3; ++i) EXPECT_EQ(fused[i], alone[i]) << "product " << i << ", " << tokens << " tokens";
    }
  }
}

}  // namespace
}  // namespace bitnet
