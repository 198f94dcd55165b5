// Whole-model decode at depth 0 and at depth 4096 in one process (google-benchmark, make bench-depth): the 2B-4T
// shape with random weights (the f16 head), a q8_0 KV cache, 2 threads; each iteration decodes the token at the
// depth again (the cache is filled once, by prefill, before the first repetition). Run with repetitions and
// --benchmark_enable_random_interleaving, the two depths take turns every second or two, so both meet the same
// minutes of this VM's read bandwidth, which swings between about 30 and 65 GB/s and decides a whole-model decode
// figure more than a few percent of engine work does (docs/performance.md). The ratio of the medians is issue 17's
// "tg128 at depth 4096 / tg128 at depth 0", measured at one position (tg128 averages positions D..D+127).
#include <benchmark/benchmark.h>

#include <bitnet/engine.h>
#include <bitnet/model.h>
#include <bitnet/thread_pool.h>

#include <algorithm>
#include <map>
#include <memory>
#include <span>
#include <vector>

namespace {

using namespace bitnet;

constexpr int64_t kDeepest = 4096;

const Model& model_2b4t() {
  static const Model model = Model::random(TransformerConfig::bitnet_2b4t(), 1);
  return model;
}

std::vector<int32_t> tokens(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 11) % 128000);
  return t;
}

// One engine per depth, its cache filled to the depth on first use and kept for every repetition.
Engine& engine_at(int64_t depth) {
  static ThreadPool pool(2);
  static std::map<int64_t, std::unique_ptr<Engine>> engines;
  auto it = engines.find(depth);
  if (it == engines.end()) {
    const KvCacheTypes q8{KvCacheType::q8_0, KvCacheType::q8_0};
    auto engine = std::make_unique<Engine>(model_2b4t(), kDeepest + 8, 1, 512, &pool, q8);
    const std::vector<int32_t> prompt = tokens(depth);
    for (int64_t p = 0; p < depth; p += 512) {
      const auto n = static_cast<size_t>(std::min<int64_t>(512, depth - p));
      engine->eval(0, std::span<const int32_t>(prompt.data() + p, n), static_cast<int32_t>(p));
    }
    it = engines.emplace(depth, std::move(engine)).first;
  }
  return *it->second;
}

// Arg: the depth. Items are decoded tokens, so items_per_second is the t/s.
void BM_ModelDecodeAtDepth(benchmark::State& state) {
  const int64_t depth = state.range(0);
  Engine& engine = engine_at(depth);
  const std::vector<int32_t> next = {42};
  for (auto _ : state) benchmark::DoNotOptimize(engine.eval(0, next, static_cast<int32_t>(depth)));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ModelDecodeAtDepth)
    ->ArgName("depth")
    ->Arg(0)
    ->Arg(kDeepest)
    ->MinTime(2.0)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
