// Foundation micro-benchmarks: the cost of a parallel region, f32 elementwise and reduction throughput
// beside memcpy of the same bytes, and f32 matmul beside calling OpenBLAS directly.
// Run: make bench   (or build/release/bench/bitnet_bench_core --benchmark_repetitions=5)
#include <benchmark/benchmark.h>
#include <bitnet/cpu.h>
#include <bitnet/ops.h>
#include <bitnet/thread_pool.h>
#include <cblas.h>

#include <cstring>
#include <random>

namespace {

using namespace bitnet;

// 64 MiB per operand: twice the L3, so these are memory figures.
constexpr int64_t kElems = int64_t{16} << 20;

Tensor filled(int64_t n, float value) { return Tensor::full({n}, value); }

void BM_ParallelRegionEmpty(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  for (auto _ : state) pool.parallel_for(pool.size(), [](int64_t, int64_t) {});
  state.counters["threads"] = static_cast<double>(pool.size());
}
BENCHMARK(BM_ParallelRegionEmpty)->Arg(1)->Arg(2)->UseRealTime();

void BM_Memcpy(benchmark::State& state) {
  Tensor a = filled(kElems, 1.0f), b = Tensor::empty({kElems});
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), a.nbytes());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<int64_t>(a.nbytes()));  // read + write
}
BENCHMARK(BM_Memcpy)->UseRealTime()->Unit(benchmark::kMillisecond);

// Binary op over 64 MiB operands: 2 reads + 1 write, bytes counted as for memcpy.
void BM_AddF32(benchmark::State& state) {
  set_default_thread_count(static_cast<int>(state.range(0)));
  Tensor a = filled(kElems, 1.0f), b = filled(kElems, 2.0f);
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).data());
  state.SetBytesProcessed(state.iterations() * 3 * static_cast<int64_t>(a.nbytes()));
}
BENCHMARK(BM_AddF32)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SiluF32(benchmark::State& state) {
  set_default_thread_count(static_cast<int>(state.range(0)));
  Tensor a = filled(kElems, 0.5f);
  for (auto _ : state) benchmark::DoNotOptimize(silu(a).data());
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<int64_t>(a.nbytes()));
}
BENCHMARK(BM_SiluF32)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SumF32(benchmark::State& state) {
  set_default_thread_count(static_cast<int>(state.range(0)));
  Tensor a = filled(kElems, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(sum(a).item());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(a.nbytes()));
}
BENCHMARK(BM_SumF32)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SoftmaxRows(benchmark::State& state) {
  set_default_thread_count(2);
  Tensor a = filled(int64_t{512} * 32000, 0.25f).view({512, 32000});  // logits of 512 tokens
  for (auto _ : state) benchmark::DoNotOptimize(softmax(a).data());
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<int64_t>(a.nbytes()));
}
BENCHMARK(BM_SoftmaxRows)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_MatmulF32(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::mt19937 rng(1);
  Tensor a = filled(n * n, 0.5f).view({n, n}), b = filled(n * n, 0.25f).view({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).data());
  state.counters["GFLOPS"] =
      benchmark::Counter(2.0 * n * n * n * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MatmulF32)->Arg(256)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same product through cblas_sgemm directly, into a preallocated output.
void BM_OpenBlasSgemm(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(),
                n);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * n * n * n * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_OpenBlasSgemm)->Arg(256)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("bitnet_isa", std::string(isa_name(preferred_isa())));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
