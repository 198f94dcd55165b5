// The whole model on the GPU against the CPU engine, on small random models: prefill logits, 32 greedy tokens,
// several sequences in one batch, graph replay vs eager, both heads. Skips without a GPU; the error paths that
// need no GPU run everywhere.
#include <bitnet/cuda.h>
#include <bitnet/engine.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "cuda/cuda_backend.h"
#include "cuda_test_util.h"

namespace bitnet::cuda {
namespace {

TransformerConfig small(FfnActivation act, bool sub_norms) {
  TransformerConfig c;
  c.arch = "bitnet-b1.58";
  c.vocab = 517;
  c.hidden = 320;   // not a multiple of 256: padded activations
  c.ffn = 864;
  c.layers = 3;
  c.heads = 5;
  c.kv_heads = 1;
  c.head_dim = 64;
  c.context = 128;
  c.norm_eps = 1e-5f;
  c.activation = act;
  c.sub_norms = sub_norms;
  return c;
}

// max |a - b| relative to the largest |b|: the GPU sums floats in other orders (attention, f16 head).
double rel_diff(const float* a, const float* b, int64_t n) {
  double d = 0, m = 0;
  for (int64_t i = 0; i < n; ++i) {
    d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
    m = std::max(m, static_cast<double>(std::fabs(b[i])));
  }
  return d / std::max(m, 1e-30);
}

int32_t argmax(const float* v, int64_t n) { return static_cast<int32_t>(std::max_element(v, v + n) - v); }

struct Case {
  FfnActivation act;
  bool sub_norms;
  HeadType head;
};

class CudaEngineVsCpu : public ::testing::TestWithParam<Case> {};

TEST_P(CudaEngineVsCpu, PrefillLogitsAnd32GreedyTokensMatch) {
  BITNET_REQUIRE_GPU();
  const Case p = GetParam();
  const Model m = Model::random(small(p.act, p.sub_norms), 21, p.head);
  const int64_t V = m.config().vocab;
  Engine cpu(m, 128, 1, 64), gpu(m, 128, 1, 64);
  offload(gpu);
  ASSERT_NE(gpu.backend(), nullptr);
  // Prefill of 40 tokens (GEMM path, all logits requested).
  std::vector<BatchToken> batch;
  for (int i = 0; i < 40; ++i) batch.push_back({(i * 37 + 11) % static_cast<int32_t>(V), i, 0, true});
  std::vector<float> lc(static_cast<size_t>(40 * V)), lg(lc.size());
  cpu.decode(batch, lc.data());
  gpu.decode(batch, lg.data());
  for (int t = 0; t < 40; ++t) ASSERT_LT(rel_diff(lg.data() + t * V, lc.data() + t * V, V), 2e-3) << "token " << t;
  // 32 greedy tokens, each side following its own choices: the sequences must agree.
  int32_t tc = argmax(lc.data() + 39 * V, V), tg = argmax(lg.data() + 39 * V, V);
  ASSERT_EQ(tc, tg);
  for (int i = 0; i < 32; ++i) {
    const float* a = cpu.eval(0, std::span<const int32_t>(&tc, 1), 40 + i);
    const float* b = gpu.eval(0, std::span<const int32_t>(&tg, 1), 40 + i);
    ASSERT_LT(rel_diff(b, a, V), 2e-3) << "step " << i;
    tc = argmax(a, V);
    tg = argmax(b, V);
    ASSERT_EQ(tc, tg) << "greedy token " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, CudaEngineVsCpu,
                         ::testing::Values(Case{FfnActivation::relu2, true, HeadType::f16},
                                           Case{FfnActivation::relu2, true, HeadType::int8},
                                           Case{FfnActivation::silu, false, HeadType::f16}));

TEST(CudaEngine, GraphReplayEqualsEagerBitForBitAndSequencesShareABatch) {
  BITNET_REQUIRE_GPU();
  const Model m = Model::random(small(FfnActivation::relu2, true), 22);
  const int64_t V = m.config().vocab;
  CudaBackend graphs(m, 64, 2, 16, 0), eager(m, 64, 2, 16, 0);
  eager.use_graphs(false);
  std::vector<float> a(static_cast<size_t>(2 * V)), b(a.size());
  for (int step = 0; step < 6; ++step) {  // two sequences decoded together, one token each per step
    const std::vector<BatchToken> batch = {{(step * 5 + 1) % 517, step, 0, true}, {(step * 7 + 2) % 517, step, 1, true}};
    graphs.decode(batch, a.data());
    eager.decode(batch, b.data());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "step " << step << " at " << i;
  }
  // The same two sequences decoded alone on the CPU give the same logits (within float tolerance).
  Engine cpu(m, 64, 2, 16);
  std::vector<float> c(static_cast<size_t>(2 * V));
  for (int step = 0; step < 6; ++step) {
    const std::vector<BatchToken> batch = {{(step * 5 + 1) % 517, step, 0, true}, {(step * 7 + 2) % 517, step, 1, true}};
    cpu.decode(batch, c.data());
  }
  EXPECT_LT(rel_diff(a.data(), c.data(), V), 2e-3);
  EXPECT_LT(rel_diff(a.data() + V, c.data() + V, V), 2e-3);
}

TEST(CudaEngine, PartialOffloadIsAClearError) {
  const Model m = Model::random(small(FfnActivation::relu2, true), 23);
  Engine e(m, 16);
  try {
    offload(e, 1);
    FAIL() << "a split between CPU and GPU must be refused";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("not implemented"), std::string::npos) << err.what();
  }
  offload(e, 0);  // -ngl 0: stays on the CPU
  EXPECT_EQ(e.backend(), nullptr);
}

TEST(CudaEngine, NoDeviceIsAClearError) {
  std::string why;
  if (device_count(&why) > 0) GTEST_SKIP() << "a GPU is present";
  const Model m = Model::random(small(FfnActivation::relu2, true), 24);
  Engine e(m, 16);
  try {
    offload(e);
    FAIL() << "offload without a device must throw";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("CUDA"), std::string::npos) << err.what();
    std::printf("%s\n", err.what());
  }
}

}  // namespace
}  // namespace bitnet::cuda
