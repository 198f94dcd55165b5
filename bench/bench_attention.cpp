// Attention's cost per decoded token at depth (google-benchmark): the 2B-4T attention shape (20 query heads, 5 KV
// heads of 128) with a small FFN and vocabulary, its cache filled to the depth by prefill; each iteration decodes
// the token at that depth again. With 1 layer the cache is in L3 (10.5 MB at depth 4096, f16): attention's
// arithmetic. With 8 layers it is not (84 MB), as in the whole model (30 layers, 315 MB): attention's memory
// access. (time at depth D) - (time at depth 0), divided by the layers, is attention over D cached positions
// for one layer. The prefill benchmark times a 512-token chunk from an empty cache (pp512's attention share).
// The Q8 kernel benchmarks time the two integer products of a q8_0 cache alone (kernels/attention_q8.h), on one
// softmax unit (128 rows of the 2B-4T shape, a group of 4 query heads of 128; the rows in L1/L2), per ISA.
#include <benchmark/benchmark.h>

#include <bitnet/cpu.h>
#include <bitnet/engine.h>
#include <bitnet/memory.h>
#include <bitnet/model.h>
#include <bitnet/thread_pool.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "kernels/attention_q8.h"

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

// One KV head's 128 cached positions of 128 values, random codes and scales: as q8_0 rows (136 bytes), as key
// tiles and as value tiles (the same rows transposed for each kernel).
struct Q8Unit {
  static constexpr int64_t kRows = 128, kHeadDim = 128, kGroup = 4, kRowBytes = 4 * kernels::kQ8BlockBytes;
  // Aligned as the engine's cache and scratch are (an unaligned buffer splits some of the wide loads).
  AlignedVector<uint8_t> rows = AlignedVector<uint8_t>(kRows * kRowBytes), tiles = rows, value_tiles = rows;
  kernels::Q8Span span{0, kHeadDim};
  AlignedVector<float> queries = AlignedVector<float>(kGroup * kHeadDim);
  AlignedVector<float> weights = AlignedVector<float>(kGroup * kRows);
  AlignedVector<int8_t> codes = AlignedVector<int8_t>(kGroup * 4 * kernels::kQ8Block);
  std::vector<float> scales = std::vector<float>(kGroup * 4);
  std::vector<int32_t> sums = std::vector<int32_t>(kGroup * 4);
  Q8Unit() {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> code(-127, 127);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<uint8_t>(code(rng));
    for (int64_t j = 0; j < kRows; ++j)
      for (int64_t b = 0; b < kRowBytes / kernels::kQ8BlockBytes; ++b) {
        const uint16_t half = 0x2000 + static_cast<uint16_t>(code(rng) & 0xff);  // about 0.008
        std::memcpy(rows.data() + j * kRowBytes + b * kernels::kQ8BlockBytes, &half, 2);
      }
    for (int64_t j = 0; j < kRows; ++j) {
      kernels::q8_key_tile_put(rows.data() + j * kRowBytes, kHeadDim,
                               tiles.data() + j / kernels::kQ8KeyTileRows * kernels::q8_key_tile_bytes(kHeadDim),
                               j % kernels::kQ8KeyTileRows);
      kernels::q8_value_tile_put(
          rows.data() + j * kRowBytes, kHeadDim,
          value_tiles.data() + j / kernels::kQ8ValueTileRows * kernels::q8_value_tile_bytes(kHeadDim),
          j % kernels::kQ8ValueTileRows);
    }
    for (float& x : queries) x = unit(rng) - 0.5f;
    for (float& x : weights) x = unit(rng);
    kernels::quantize_queries(queries.data(), kGroup, span, 0.088f, {codes.data(), scales.data(), sums.data()});
  }
};

// Arg: the ISA (bitnet::Isa: 0 ref, 1 avx2, 4 avxvnni, 2 avx512).
void BM_Q8Scores(benchmark::State& state) {
  const auto* k = kernels::attention_q8_family().variant(static_cast<Isa>(state.range(0)));
  if (k == nullptr) return state.SkipWithError("this CPU cannot run the variant");
  static const Q8Unit u;
  std::vector<float> out(Q8Unit::kGroup * Q8Unit::kRows);
  const kernels::Q8Queries q{const_cast<int8_t*>(u.codes.data()), const_cast<float*>(u.scales.data()),
                             const_cast<int32_t*>(u.sums.data())};
  for (auto _ : state) {
    for (int64_t c = 0; c < Q8Unit::kRows; c += 32)
      k->scores(u.tiles.data() + c * Q8Unit::kRowBytes, 32, Q8Unit::kHeadDim, q, Q8Unit::kGroup, out.data() + c,
                Q8Unit::kRows, nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * Q8Unit::kRows);  // rows
}
void BM_Q8WeightedSum(benchmark::State& state) {
  const auto* k = kernels::attention_q8_family().variant(static_cast<Isa>(state.range(0)));
  if (k == nullptr) return state.SkipWithError("this CPU cannot run the variant");
  static const Q8Unit u;
  std::vector<float> y(Q8Unit::kGroup * Q8Unit::kHeadDim);
  for (auto _ : state) {
    for (int64_t c = 0; c < Q8Unit::kRows; c += 32)
      k->weighted_sum(u.weights.data() + c, Q8Unit::kRows, u.value_tiles.data() + c * Q8Unit::kRowBytes, 32,
                      Q8Unit::kHeadDim, y.data(), Q8Unit::kGroup, nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * Q8Unit::kRows);
}
BENCHMARK(BM_Q8Scores)->ArgName("isa")->Arg(0)->Arg(1)->Arg(4)->Arg(2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Q8WeightedSum)->ArgName("isa")->Arg(0)->Arg(1)->Arg(4)->Arg(2)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
