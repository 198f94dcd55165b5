// The GPU ternary layout on the host (runs without a GPU): repacking from the CPU layout decodes back to the
// original weights on awkward sizes, padding is weight 0, fused matrices keep their scales, and the kernels'
// arithmetic (chunk_dot + epilogue, the code the GPU runs) equals the CPU ternary_matmul bit for bit.
#include <bitnet/cuda.h>
#include <bitnet/quant.h>
#include <bitnet/ternary.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <random>

#include "cuda/gpu_layout.h"

namespace bitnet::cuda {
namespace {

std::vector<int8_t> random_ternary(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(-1, 1);
  std::vector<int8_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<int8_t>(d(rng));
  return v;
}

TEST(CudaLayout, RepackDecodesToTheOriginalWeightsOnAwkwardSizes) {
  std::mt19937 rng(1);
  for (int64_t rows : {1, 3, 4, 5, 17, 33})
    for (int64_t cols : {1, 15, 63, 64, 65, 255, 256, 257, 1000}) {
      const auto values = random_ternary(rows * cols, rng);
      const TernaryMatrix m = TernaryMatrix::pack(values.data(), rows, cols, 0.5f);
      const GpuTernary g = pack_gpu_ternary(m);
      ASSERT_EQ(g.rows, rows);
      ASSERT_EQ(g.k_pad % 256, 0);
      ASSERT_EQ(g.data.size(), static_cast<size_t>((rows + 3) / 4 * 4 * g.k_pad / 4));
      ASSERT_EQ(unpack_gpu_ternary(g), values) << rows << " x " << cols;
      // Every padding position (columns past cols, rows past rows in the last group) holds code 1 (weight 0).
      for (int64_t n = 0; n < (rows + 3) / 4 * 4; ++n)
        for (int64_t k = (n < rows ? cols : 0); k < g.k_pad; ++k) {
          const uint8_t byte = g.data[static_cast<size_t>(gpu_chunk_offset(n, k / 64, g.n_chunks()) + k % 16)];
          ASSERT_EQ((byte >> (2 * ((k % 64) / 16))) & 3, 1) << "row " << n << " col " << k;
        }
    }
}

TEST(CudaLayout, FusedMatricesConcatenateRowsAndKeepTheirScales) {
  std::mt19937 rng(2);
  const auto a = random_ternary(7 * 300, rng), b = random_ternary(6 * 300, rng);
  const TernaryMatrix ma = TernaryMatrix::pack(a.data(), 7, 300, 0.25f);
  TernaryWeights wb;
  wb.granularity = Granularity::per_channel;
  wb.rows = 6;
  wb.cols = 300;
  wb.values = b;
  for (int i = 0; i < 6; ++i) wb.scales.push_back(0.1f * static_cast<float>(i + 1));
  const TernaryMatrix mb = TernaryMatrix::pack(wb);
  const TernaryMatrix* parts[] = {&ma, &mb};
  const GpuTernary g = pack_gpu_ternary(parts);
  ASSERT_EQ(g.rows, 13);
  std::vector<int8_t> both = a;
  both.insert(both.end(), b.begin(), b.end());
  EXPECT_EQ(unpack_gpu_ternary(g), both);
  for (int n = 0; n < 7; ++n) {
    EXPECT_EQ(g.tensor_scale[static_cast<size_t>(n)], 0.25f);
    EXPECT_EQ(g.row_scale[static_cast<size_t>(n)], 1.0f);
  }
  for (int n = 0; n < 6; ++n) {
    EXPECT_EQ(g.tensor_scale[static_cast<size_t>(7 + n)], 1.0f);
    EXPECT_EQ(g.row_scale[static_cast<size_t>(7 + n)], wb.scales[static_cast<size_t>(n)]);
  }
  const TernaryMatrix wide = TernaryMatrix::pack(a.data(), 3, 700, 1.0f);
  const TernaryMatrix* mismatched[] = {&ma, &wide};
  EXPECT_THROW(pack_gpu_ternary(mismatched), Error);
}

// The GPU kernels' arithmetic, run on the host, against the CPU kernels: bit-identical outputs.
TEST(CudaLayout, KernelArithmeticEqualsTheCpuTernaryMatmulBitForBit) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto [rows, cols, tokens, per_channel] :
       {std::tuple{5, 300, 1, false}, std::tuple{37, 1000, 3, true}, std::tuple{64, 2560, 8, false},
        std::tuple{9, 6912, 2, true}}) {
    TernaryWeights w;
    w.granularity = per_channel ? Granularity::per_channel : Granularity::per_tensor;
    w.rows = rows;
    w.cols = cols;
    w.values = random_ternary(int64_t{rows} * cols, rng);
    for (int i = 0; i < (per_channel ? rows : 1); ++i) w.scales.push_back(0.01f + 0.37f * static_cast<float>(i % 5));
    const TernaryMatrix m = TernaryMatrix::pack(w);
    std::vector<float> x(static_cast<size_t>(tokens * cols));
    for (auto& v : x) v = nd(rng);
    QuantizedActivations q;
    quantize_activations(x.data(), tokens, cols, cols, q);
    std::vector<float> cpu(static_cast<size_t>(tokens * rows)), gpu(cpu.size());
    ternary_matmul(m, q, cpu.data(), rows);
    const GpuTernary g = pack_gpu_ternary(m);
    gpu_ternary_reference(g, q.row(0), q.k_pad(), q.sums(), q.dequant(), tokens, gpu.data(), rows, false);
    for (size_t i = 0; i < cpu.size(); ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(cpu[i]), std::bit_cast<uint32_t>(gpu[i])) << rows << "x" << cols << " @" << i;
    // The residual form: y = y_old + result, as the engine's add after the projection.
    std::vector<float> acc(cpu.size(), 0.5f);
    gpu_ternary_reference(g, q.row(0), q.k_pad(), q.sums(), q.dequant(), tokens, acc.data(), rows, true);
    for (size_t i = 0; i < cpu.size(); ++i) ASSERT_EQ(acc[i], 0.5f + cpu[i]);
  }
}

TEST(CudaDevice, CountingDevicesNeverCrashesAndExplainsZero) {
  std::string why;
  const int n = device_count(&why);
  ASSERT_GE(n, 0);
  EXPECT_TRUE(built());
  if (n == 0) {
    EXPECT_FALSE(why.empty());
    std::printf("no GPU here: %s\n", why.c_str());
    EXPECT_THROW(device_info(0), Error);
  }
}

}  // namespace
}  // namespace bitnet::cuda
