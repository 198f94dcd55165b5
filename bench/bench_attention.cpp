// Attention's cost per decoded token at depth (google-benchmark): the 2B-4T attention shape (20 query heads, 5 KV
// heads of 128) with a small FFN and vocabulary, its cache filled to the depth by prefill; each iteration decodes
// the token at that depth again. With 1 layer the cache is in L3 (10.5 MB at depth 4096, f16): attention's
// arithmetic. With 8 layers it is not (84 MB), as in the whole model (30 layers, 315 MB): attention's memory
// access. (time at depth D) - (time at depth 0), divided by the layers, is attention over D cached positions
// for one layer. The prefill benchmark times a 512-token chunk from an empty cache (pp512's attention share).
#include <benchmark/benchmark.h>

#include <bitnet/engine.h>
#include <bitnet/model.h>
#include <bitnet/thread_pool.h>

#include <map>
#include <memory>
#include <vector>

namespace {

using namespace bitnet;

const Model& attention_model(int64_t layers) {
  static std::map<int64_t, std::unique_ptr<Model>> models;
  auto it = models.find(layers);
  if (it == models.end()) {
    TransformerConfig c = TransformerConfig::bitnet_2b4t();
    c.layers = layers;
    c.ffn = 256;
    c.vocab = 256;
    it = models.emplace(layers, std::unique_ptr<Model>(new Model(Model::random(c, 5)))).first;
  }
  return *it->second;
}

std::vector<int32_t> tokens(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37 + 11) % 256);
  return t;
}

KvCacheTypes cache(int64_t q8) { return q8 ? KvCacheTypes{KvCacheType::q8_0, KvCacheType::q8_0} : KvCacheTypes{}; }

// Args: depth, q8_0 cache (0/1), layers; 2 threads.
void BM_DecodeAtDepth(benchmark::State& state) {
  const int64_t depth = state.range(0);
  ThreadPool pool(2);
  Engine engine(attention_model(state.range(2)), depth + 8, 1, 512, &pool, cache(state.range(1)));
  const std::vector<int32_t> prompt = tokens(depth + 1);
  for (int64_t p = 0; p < depth; p += 512)
    engine.eval(0, std::span<const int32_t>(prompt.data() + p, static_cast<size_t>(std::min<int64_t>(512, depth - p))),
                static_cast<int32_t>(p));
  const std::span<const int32_t> next(prompt.data() + depth, 1);
  for (auto _ : state) benchmark::DoNotOptimize(engine.eval(0, next, static_cast<int32_t>(depth)));
}
BENCHMARK(BM_DecodeAtDepth)
    ->ArgNames({"depth", "q8", "layers"})
    ->ArgsProduct({{0, 1024, 4096}, {0, 1}, {1, 8}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_Prefill512(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(1)));
  Engine engine(attention_model(1), 520, 1, 512, &pool, cache(state.range(0)));
  const std::vector<int32_t> prompt = tokens(512);
  for (auto _ : state) benchmark::DoNotOptimize(engine.eval(0, prompt, 0));
}
BENCHMARK(BM_Prefill512)->ArgNames({"q8", "threads"})->ArgsProduct({{0, 1}, {2}})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
