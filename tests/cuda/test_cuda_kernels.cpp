// Every CUDA kernel against the CPU reference: bit-exact where the accumulation is int32 (ternary GEMV/GEMM,
// int8 head, quantization), within a float tolerance elsewhere (f16 head, attention). Skips without a GPU.
#include <bitnet/dense.h>
#include <bitnet/quant.h>
#include <bitnet/ternary.h>
#include <bitnet/dtype.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "cuda/gpu_layout.h"
#include "cuda/kernels.h"
#include "cuda_test_util.h"
#include "kernels/vector.h"

namespace bitnet::cuda {
namespace {

using test::to_device;
using test::to_host;

std::vector<float> randn(size_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TernaryMatrix random_matrix(int64_t rows, int64_t cols, bool per_channel, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(-1, 1);
  TernaryWeights w;
  w.granularity = per_channel ? Granularity::per_channel : Granularity::per_tensor;
  w.rows = rows;
  w.cols = cols;
  w.values.resize(static_cast<size_t>(rows * cols));
  for (auto& v : w.values) v = static_cast<int8_t>(d(rng));
  for (int64_t i = 0; i < (per_channel ? rows : 1); ++i) w.scales.push_back(0.02f + 0.1f * static_cast<float>(i % 7));
  return TernaryMatrix::pack(w);
}

struct DevMatrixForTest {
  DeviceBuffer data, ts, rs;
  DevTernary view;
  explicit DevMatrixForTest(const GpuTernary& g)
      : data(to_device(g.data)), ts(to_device(g.tensor_scale)), rs(to_device(g.row_scale)) {
    view = {data.as<uint8_t>(), ts.as<float>(), rs.as<float>(), g.rows, g.k_pad};
  }
};

struct DevActsForTest {
  DeviceBuffer q, dq, sums;
  DevActs view;
  explicit DevActsForTest(const QuantizedActivations& a)
      : q(to_device(std::vector<int8_t>(a.row(0), a.row(0) + a.tokens() * a.k_pad()))),
        dq(to_device(std::vector<float>(a.dequant(), a.dequant() + a.tokens()))),
        sums(to_device(std::vector<int32_t>(a.sums(), a.sums() + a.tokens()))) {
    view = {q.as<int8_t>(), dq.as<float>(), sums.as<int32_t>(), a.k_pad()};
  }
};

// The GEMV (1..8 tokens) and the GEMM (any count) against ternary_matmul, bit for bit, plus the residual form.
void check_ternary(int64_t rows, int64_t cols, int tokens, bool per_channel, bool gemm) {
  std::mt19937 rng(static_cast<uint32_t>(rows * 131 + cols * 7 + tokens));
  const TernaryMatrix m = random_matrix(rows, cols, per_channel, rng);
  const auto x = randn(static_cast<size_t>(tokens * cols), rng);
  QuantizedActivations q;
  quantize_activations(x.data(), tokens, cols, cols, q);
  std::vector<float> cpu(static_cast<size_t>(tokens * rows));
  ternary_matmul(m, q, cpu.data(), rows);
  DevMatrixForTest w(pack_gpu_ternary(m));
  DevActsForTest a(q);
  const std::vector<float> base = randn(cpu.size(), rng);
  DeviceBuffer y = to_device(base);
  auto run = [&](bool acc) {
    if (gemm) ternary_gemm(w.view, a.view, tokens, y.as<float>(), rows, acc, nullptr);
    else ternary_gemv(w.view, a.view, tokens, y.as<float>(), rows, acc, nullptr);
  };
  run(true);
  const auto summed = to_host<float>(y, cpu.size());
  run(false);
  const auto got = to_host<float>(y, cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(cpu[i]))
        << (gemm ? "gemm " : "gemv ") << rows << "x" << cols << " tokens " << tokens << " at " << i;
    ASSERT_EQ(summed[i], base[i] + cpu[i]) << i;
  }
}

TEST(CudaKernels, TernaryGemvEqualsCpuBitForBit) {
  BITNET_REQUIRE_GPU();
  for (int tokens = 1; tokens <= kGemvMaxTokens; ++tokens) {
    check_ternary(1, 1, tokens, false, false);
    check_ternary(37, 1000, tokens, true, false);
    check_ternary(2560, 2560, tokens, false, false);
  }
  check_ternary(130, 6912, 1, false, false);
  check_ternary(13824, 2560, 1, false, false);
}

TEST(CudaKernels, TernaryGemmEqualsCpuBitForBit) {
  BITNET_REQUIRE_GPU();
  for (int tokens : {1, 9, 64, 77, 130}) {
    check_ternary(5, 300, tokens, false, true);
    check_ternary(100, 1000, tokens, true, true);
  }
  check_ternary(2560, 2560, 512, false, true);
  check_ternary(2560, 6912, 65, false, true);
}

// Quantization (plain, RMSNorm-fused, gated + RMSNorm, gathered rows) against the CPU quantizers.
TEST(CudaKernels, NormQuantEqualsCpu) {
  BITNET_REQUIRE_GPU();
  std::mt19937 rng(11);
  const auto& vk = kernels::vector_kernels();
  for (int64_t k : {1, 100, 2560, 6912}) {
    const int rows = 5;
    const int64_t k_pad = (k + 255) / 256 * 256;
    auto x = randn(static_cast<size_t>(rows * k), rng, 3.0f);
    const auto up = randn(x.size(), rng);
    const auto g = randn(static_cast<size_t>(k), rng);
    for (int mode = 0; mode < 4; ++mode) {  // 0 plain, 1 norm, 2 relu2 gate + norm, 3 norm with gathered rows
      std::vector<float> in = x;
      if (mode == 2) {
        vk.unary[static_cast<int>(kernels::UnaryOp::relu2)](in.data(), in.data(), static_cast<int64_t>(in.size()));
        vk.binary[static_cast<int>(kernels::BinaryOp::mul)](in.data(), up.data(), in.data(), static_cast<int64_t>(in.size()));
      }
      const std::vector<int32_t> index = {4, 2, 0};
      const int out_rows = mode == 3 ? 3 : rows;
      std::vector<float> gathered;
      for (int j = 0; j < out_rows; ++j) {
        const int src = mode == 3 ? index[static_cast<size_t>(j)] : j;
        gathered.insert(gathered.end(), in.begin() + src * k, in.begin() + (src + 1) * k);
      }
      QuantizedActivations cpu;
      if (mode == 0) quantize_activations(gathered.data(), out_rows, k, k, cpu);
      else rms_norm_quantize_activations(gathered.data(), g.data(), 1e-5f, out_rows, k, k, cpu);

      DeviceBuffer dx = to_device(x), dup = to_device(up), dg = to_device(g), didx = to_device(index);
      DeviceBuffer dq(static_cast<size_t>(rows * k_pad)), ddq(rows * sizeof(float)), dsum(rows * sizeof(int32_t));
      BITNET_CUDA_CHECK(cudaMemset(dq.get(), 0x7f, dq.bytes()));  // the padding must be rewritten to 0
      NormQuantArgs a;
      a.x = dx.as<float>();
      a.x_stride = k;
      a.up = dup.as<float>();
      a.up_stride = k;
      a.act = mode == 2 ? GateAct::relu2 : GateAct::none;
      a.g = mode == 0 ? nullptr : dg.as<float>();
      a.eps = 1e-5f;
      a.row_index = mode == 3 ? didx.as<int32_t>() : nullptr;
      a.rows = out_rows;
      a.k = k;
      a.q = dq.as<int8_t>();
      a.k_pad = k_pad;
      a.dequant = ddq.as<float>();
      a.sums = dsum.as<int32_t>();
      norm_quant(a, nullptr);
      const auto q = to_host<int8_t>(dq, static_cast<size_t>(out_rows * k_pad));
      const auto dq_h = to_host<float>(ddq, static_cast<size_t>(out_rows));
      const auto s_h = to_host<int32_t>(dsum, static_cast<size_t>(out_rows));
      for (int j = 0; j < out_rows; ++j) {
        ASSERT_EQ(0, std::memcmp(q.data() + j * k_pad, cpu.row(j), static_cast<size_t>(k_pad))) << "mode " << mode << " k " << k << " row " << j;
        ASSERT_EQ(dq_h[static_cast<size_t>(j)], cpu.dequant()[j]);
        ASSERT_EQ(s_h[static_cast<size_t>(j)], cpu.sums()[j]);
      }
      if (mode == 2) {  // the gated product is written back over x, as the engine's gate buffer
        const auto written = to_host<float>(dx, x.size());
        for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(written[i], in[i]);
      }
    }
  }
}

TEST(CudaKernels, HeadsAndFinalNormMatchCpu) {
  BITNET_REQUIRE_GPU();
  std::mt19937 rng(12);
  const int64_t rows = 1003, k = 320;
  const auto wf = randn(static_cast<size_t>(rows * k), rng, 0.05f);
  Tensor w32 = Tensor::from_bytes(wf.data(), {rows, k}, DType::f32);
  const Tensor w16 = w32.to(DType::f16);
  const Int8Matrix w8 = Int8Matrix::quantize(w32);
  const auto g = randn(static_cast<size_t>(k), rng);
  for (int tokens : {1, 3, 8, 11}) {
    const auto x = randn(static_cast<size_t>(tokens * k), rng);
    // Final norm.
    std::vector<float> h(x.size());
    for (int t = 0; t < tokens; ++t) kernels::vector_kernels().rms_norm_row(x.data() + t * k, g.data(), h.data() + t * k, k, 1e-5f);
    DeviceBuffer dx = to_device(x), dg = to_device(g), dh(h.size() * sizeof(float));
    rms_norm_rows(dx.as<float>(), k, nullptr, tokens, dg.as<float>(), 1e-5f, k, dh.as<float>(), nullptr);
    const auto h_gpu = to_host<float>(dh, h.size());
    for (size_t i = 0; i < h.size(); ++i) ASSERT_NEAR(h_gpu[i], h[i], 1e-6f * (1.0f + std::fabs(h[i])));
    // f16 head (f32 accumulation in another order: a tolerance).
    std::vector<float> cpu(static_cast<size_t>(tokens * rows));
    f16_matmul(w16, h.data(), tokens, k, cpu.data(), rows);
    std::vector<uint16_t> w16v(static_cast<const uint16_t*>(w16.data()), static_cast<const uint16_t*>(w16.data()) + rows * k);
    DeviceBuffer dw = to_device(w16v), dhh = to_device(h), dy(cpu.size() * sizeof(float));
    head_f16(dw.as<uint16_t>(), rows, k, dhh.as<float>(), tokens, dy.as<float>(), rows, nullptr);
    const auto y = to_host<float>(dy, cpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) ASSERT_NEAR(y[i], cpu[i], 1e-4f * (1.0f + std::fabs(cpu[i]))) << i;
    // int8 head: exact.
    QuantizedActivations q;
    quantize_activations(h.data(), tokens, k, k, q);
    int8_matmul(w8, q, cpu.data(), rows);
    DevActsForTest a(q);
    const std::vector<uint8_t> w8_rows = w8.row_major();
    DeviceBuffer d8(w8_rows.size()), ds = to_device(w8.row_scales());
    d8.upload(std::span<const uint8_t>(w8_rows.data(), w8_rows.size()));
    head_int8(d8.as<uint8_t>(), ds.as<float>(), rows, a.view, tokens, dy.as<float>(), rows, nullptr);
    const auto y8 = to_host<float>(dy, cpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) ASSERT_EQ(std::bit_cast<uint32_t>(y8[i]), std::bit_cast<uint32_t>(cpu[i])) << i;
  }
}

// RoPE + cache store and attention against a double-precision reference written here (GQA, several
// sequences and positions, prefill-style batches where tokens attend to positions written in the same call).
TEST(CudaKernels, RopeKvAndAttentionMatchAReference) {
  BITNET_REQUIRE_GPU();
  std::mt19937 rng(13);
  const int heads = 4, kv_heads = 2, d = 64, n_seq = 2, layers = 2, layer = 1;
  const int64_t n_ctx = 40, kv_dim = kv_heads * d, q_dim = heads * d, qkv_dim = q_dim + 2 * kv_dim;
  const int half = d / 2;
  std::vector<float> cs(static_cast<size_t>(n_ctx * half)), sn(cs.size());
  for (int64_t p = 0; p < n_ctx; ++p)
    for (int i = 0; i < half; ++i) {
      const float a = static_cast<float>(p) / std::pow(10000.0f, 2.0f * i / d);
      cs[static_cast<size_t>(p * half + i)] = std::cos(a);
      sn[static_cast<size_t>(p * half + i)] = std::sin(a);
    }
  // Sequence 0 gets positions 0..29 in one batch (prefill), sequence 1 positions 0..9; then one more each.
  std::vector<std::vector<int32_t>> batches_pos = {{}, {30, 10}};
  std::vector<std::vector<int32_t>> batches_seq = {{}, {0, 1}};
  for (int p = 0; p < 30; ++p) { batches_pos[0].push_back(p); batches_seq[0].push_back(0); }
  for (int p = 0; p < 10; ++p) { batches_pos[0].push_back(p); batches_seq[0].push_back(1); }
  const size_t cache_n = static_cast<size_t>(layers * n_seq * n_ctx * kv_dim);
  DeviceBuffer kc(cache_n * 2), vc(cache_n * 2), dcs = to_device(cs), dsn = to_device(sn);
  BITNET_CUDA_CHECK(cudaMemset(kc.get(), 0, kc.bytes()));
  BITNET_CUDA_CHECK(cudaMemset(vc.get(), 0, vc.bytes()));
  const DevKvCache cache{kc.as<uint16_t>(), vc.as<uint16_t>(), n_seq, n_ctx, kv_dim};
  attention_prepare(n_ctx, d);
  std::vector<std::vector<double>> ref_k(static_cast<size_t>(n_seq * n_ctx)), ref_v(ref_k.size());
  for (size_t bi = 0; bi < batches_pos.size(); ++bi) {
    const auto& pos = batches_pos[bi];
    const auto& seq = batches_seq[bi];
    const int T = static_cast<int>(pos.size());
    auto qkv = randn(static_cast<size_t>(T * qkv_dim), rng);
    std::vector<int32_t> tok(static_cast<size_t>(T), 0);
    DeviceBuffer dqkv = to_device(qkv), dpos = to_device(pos), dseq = to_device(seq), dtok = to_device(tok);
    DeviceBuffer dout(static_cast<size_t>(T * q_dim) * sizeof(float));
    const DevBatch b{dtok.as<int32_t>(), dpos.as<int32_t>(), dseq.as<int32_t>(), T};
    rope_kv(dqkv.as<float>(), qkv_dim, b, heads, kv_heads, d, dcs.as<float>(), dsn.as<float>(), cache, layer, nullptr);
    attention(dqkv.as<float>(), qkv_dim, b, heads, kv_heads, d, cache, layer, dout.as<float>(), q_dim, nullptr);
    const auto roped = to_host<float>(dqkv, qkv.size());
    const auto out = to_host<float>(dout, static_cast<size_t>(T * q_dim));
    // Reference rope (the CPU engine's expression) and cache contents.
    for (int t = 0; t < T; ++t) {
      float* row = qkv.data() + t * qkv_dim;
      for (int h = 0; h < heads + kv_heads; ++h) {
        float* v = row + h * d;
        for (int i = 0; i < half; ++i) {
          const float c = cs[static_cast<size_t>(pos[t] * half + i)], s = sn[static_cast<size_t>(pos[t] * half + i)];
          const float a = v[i], bb = v[i + half];
          v[i] = a * c - bb * s;
          v[i + half] = bb * c + a * s;
        }
      }
      for (int64_t i = 0; i < q_dim + kv_dim; ++i) ASSERT_EQ(roped[static_cast<size_t>(t * qkv_dim + i)], row[i]) << t << " " << i;
      auto& kr = ref_k[static_cast<size_t>(seq[t] * n_ctx + pos[t])];
      auto& vr = ref_v[static_cast<size_t>(seq[t] * n_ctx + pos[t])];
      kr.assign(static_cast<size_t>(kv_dim), 0);
      vr.assign(static_cast<size_t>(kv_dim), 0);
      for (int64_t i = 0; i < kv_dim; ++i) {
        kr[static_cast<size_t>(i)] = f16_to_f32(f32_to_f16(row[q_dim + i]));
        vr[static_cast<size_t>(i)] = f16_to_f32(f32_to_f16(row[q_dim + kv_dim + i]));
      }
    }
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < heads; ++h) {
        const int kvh = h / (heads / kv_heads);
        const float* q = qkv.data() + t * qkv_dim + h * d;
        std::vector<double> sc(static_cast<size_t>(pos[t] + 1));
        double m = -1e300, total = 0;
        for (int j = 0; j <= pos[t]; ++j) {
          const auto& kr = ref_k[static_cast<size_t>(seq[t] * n_ctx + j)];
          double s = 0;
          for (int i = 0; i < d; ++i) s += q[i] * kr[static_cast<size_t>(kvh * d + i)];
          sc[static_cast<size_t>(j)] = s / std::sqrt(static_cast<double>(d));
          m = std::max(m, sc[static_cast<size_t>(j)]);
        }
        for (auto& s : sc) total += (s = std::exp(s - m));
        for (int i = 0; i < d; ++i) {
          double o = 0;
          for (int j = 0; j <= pos[t]; ++j)
            o += sc[static_cast<size_t>(j)] / total * ref_v[static_cast<size_t>(seq[t] * n_ctx + j)][static_cast<size_t>(kvh * d + i)];
          ASSERT_NEAR(out[static_cast<size_t>(t * q_dim + h * d + i)], o, 2e-5) << "token " << t << " head " << h << " dim " << i;
        }
      }
  }
}

TEST(CudaKernels, EmbedCopiesRows) {
  BITNET_REQUIRE_GPU();
  std::mt19937 rng(14);
  const int64_t vocab = 50, hidden = 72;
  const auto table = randn(static_cast<size_t>(vocab * hidden), rng);
  std::vector<uint16_t> t16(table.size());
  for (size_t i = 0; i < table.size(); ++i) t16[i] = f32_to_f16(table[i]);
  const std::vector<int32_t> ids = {3, 49, 0, 3};
  DeviceBuffer d32 = to_device(table), d16 = to_device(t16), did = to_device(ids), dx(ids.size() * hidden * sizeof(float));
  const DevBatch b{did.as<int32_t>(), nullptr, nullptr, static_cast<int>(ids.size())};
  for (bool f16 : {false, true}) {
    embed(f16 ? d16.get() : d32.get(), f16, b, hidden, dx.as<float>(), nullptr);
    const auto x = to_host<float>(dx, ids.size() * hidden);
    for (size_t t = 0; t < ids.size(); ++t)
      for (int64_t i = 0; i < hidden; ++i) {
        const size_t src = static_cast<size_t>(ids[t] * hidden + i);
        ASSERT_EQ(x[t * hidden + static_cast<size_t>(i)], f16 ? f16_to_f32(t16[src]) : table[src]);
      }
  }
}

}  // namespace
}  // namespace bitnet::cuda
