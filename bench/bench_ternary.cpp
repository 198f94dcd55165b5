// Ternary kernel benchmarks on the BitNet b1.58 2B4T layer shapes.
//   GEMV (decode, 1 token): weight bytes streamed per second, beside this binary's own streaming-read figure.
//     Weights rotate through > 64 MiB of copies so the 32 MiB L3 cannot hold them.
//   GEMM (prefill, 128 and 512 tokens): effective GOPS = 2 * rows * cols * tokens / s. At 1 token, one copy of
//     the matrix that stays in the L2/L3: the GEMV's compute ceiling, in weight bytes per second.
//   Batch (batched decode, 1-16 tokens, weights rotated out of the L3 as in GEMV): GOPS and weight bytes per second.
//   DecodeLayers: decode's GEMV calls over 12 layers of the shape, as the engine makes them (per-call costs included).
// Every runnable variant, at 1 and 2 threads, in both packings (the base-3 shapes' names end in "_base3"; bytes/s
// counts the bytes of the packing, so compare the base-3 and 2-bit figures by time or by the "Gw/s" counter, giga
// weights per second). Run: build/release/bench/bitnet_bench_ternary
#include <benchmark/benchmark.h>
#include <bitnet/bandwidth.h>
#include <bitnet/cpu.h>
#include <bitnet/dense.h>
#include <bitnet/memory.h>
#include <bitnet/model.h>
#include <bitnet/nbit.h>
#include <bitnet/ternary.h>
#include <bitnet/thread_pool.h>

#include <array>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/ternary.h"

namespace {

using namespace bitnet;

struct LayerShape {
  std::string name;
  int64_t rows, cols;  // out_features x in_features
  TernaryPacking packing;
};
// The 2B4T shapes in the 2-bit packing, then in the base-3 one.
std::vector<LayerShape> shapes() {
  std::vector<LayerShape> out;
  for (TernaryPacking p : {TernaryPacking::two_bit, TernaryPacking::base3}) {
    const std::string suffix = p == TernaryPacking::base3 ? "_base3" : "";
    for (const auto& [name, rows, cols] : {std::tuple{"qo_2560x2560", 2560, 2560}, {"kv_640x2560", 640, 2560},
                                            {"gateup_6912x2560", 6912, 2560}, {"down_2560x6912", 2560, 6912}})
      out.push_back({name + suffix, rows, cols, p});
  }
  return out;
}
constexpr int64_t kRotateBytes = int64_t{96} << 20;

TernaryMatrix random_matrix(const LayerShape& shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-1, 1);
  std::vector<int8_t> w(static_cast<size_t>(shape.rows * shape.cols));
  for (auto& v : w) v = static_cast<int8_t>(d(rng));
  return TernaryMatrix::pack(w.data(), shape.rows, shape.cols, 0.5f, shape.packing);
}

// Giga weights per second: the figure that compares the packings.
void count_weights(benchmark::State& state, const LayerShape& shape) {
  state.counters["Gw/s"] = benchmark::Counter(static_cast<double>(shape.rows * shape.cols) * 1e-9 *
                                                  static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
}

QuantizedActivations random_activations(int64_t tokens, int64_t cols) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(tokens * cols));
  for (auto& v : x) v = d(rng);
  QuantizedActivations q;
  quantize_activations(x.data(), tokens, cols, cols, q);
  return q;
}

// Streaming read bandwidth of this machine, measured here with the library's probe (the one `bitnet bench` uses):
// 256 MiB (8x the L3) of pseudo-random words, summed by plain C++ that runs on any x86-64.
void BM_StreamRead(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  const ReadBandwidthProbe probe;
  for (auto _ : state) benchmark::DoNotOptimize(probe.measure(pool, 1));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(probe.bytes()));
}

// Decode's ternary GEMVs as the engine calls them, layer after layer: q/k/v in one call, o, gate/up in one call,
// down, over 12 layers of the 2B4T shape (216 MB, so from DRAM), one token. Per-call costs (the pool's chunks,
// each thread's stream starting again) show here and not in one matrix's rotated GEMV. bytes/s beside StreamRead.
void BM_TernaryDecodeLayers(benchmark::State& state, TernaryPacking packing) {
  constexpr int kLayers = 12;
  const int threads = static_cast<int>(state.range(0));
  // q, k, v, o, gate, up, down: rows x cols.
  constexpr int64_t kShapes[7][2] = {{2560, 2560}, {640, 2560}, {640, 2560}, {2560, 2560},
                                     {6912, 2560}, {6912, 2560}, {2560, 6912}};
  std::vector<std::array<TernaryMatrix, 7>> layers(kLayers);
  int64_t bytes = 0;
  for (int l = 0; l < kLayers; ++l)
    for (int i = 0; i < 7; ++i) {
      layers[l][i] = random_matrix({"", kShapes[i][0], kShapes[i][1], packing}, 7 * l + i);
      bytes += static_cast<int64_t>(layers[l][i].bytes());
    }
  ThreadPool pool(threads);
  const QuantizedActivations x = random_activations(1, 2560), x_down = random_activations(1, 6912);
  std::vector<float> y(2 * 6912);
  for (auto _ : state) {
    for (auto& m : layers) {
      const TernaryProduct qkv[3] = {
          {&m[0], y.data(), 0}, {&m[1], y.data() + 2560, 0}, {&m[2], y.data() + 3200, 0}};
      ternary_matmul(qkv, x, pool);
      ternary_matmul(m[3], x, y.data(), 2560, pool);
      const TernaryProduct gate_up[2] = {{&m[4], y.data(), 0}, {&m[5], y.data() + 6912, 0}};
      ternary_matmul(gate_up, x, pool);
      ternary_matmul(m[6], x_down, y.data(), 2560, pool);
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}

// Runs ternary_matmul on `tokens` tokens over copies of a random matrix of `shape`, one copy after another, so
// that the weights come from DRAM (more than 64 MiB of copies; the L3 is 32 MiB); bytes/s counts one copy per run.
void run_rotated(benchmark::State& state, const LayerShape& shape, int64_t tokens, ThreadPool& pool) {
  std::vector<TernaryMatrix> ws{random_matrix(shape, 0)};
  const size_t one = ws[0].bytes();
  const size_t copies = std::max<size_t>(2, kRotateBytes / one + 1);
  for (size_t i = 1; i < copies; ++i) ws.push_back(random_matrix(shape, static_cast<unsigned>(i)));
  const QuantizedActivations x = random_activations(tokens, shape.cols);
  std::vector<float> y(static_cast<size_t>(shape.rows * tokens));
  size_t i = 0;
  for (auto _ : state) {
    ternary_matmul(ws[i], x, y.data(), shape.rows, pool);
    i = (i + 1) % copies;
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(one));
  state.counters["copies"] = static_cast<double>(copies);
  count_weights(state, shape);
}

void BM_TernaryGemv(benchmark::State& state, const LayerShape& shape, Isa isa) {
  const int threads = static_cast<int>(state.range(0));
  force_isa(isa);
  ThreadPool pool(threads);
  run_rotated(state, shape, 1, pool);
  force_isa(std::nullopt);
}

void BM_TernaryGemm(benchmark::State& state, const LayerShape& shape, Isa isa) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t tokens = state.range(1);
  force_isa(isa);
  ThreadPool pool(threads);
  const TernaryMatrix w = random_matrix(shape, 7);
  const QuantizedActivations x = random_activations(tokens, shape.cols);
  std::vector<float> y(static_cast<size_t>(shape.rows * tokens));
  for (auto _ : state) {
    ternary_matmul(w, x, y.data(), shape.rows, pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOPS"] = benchmark::Counter(
      2.0 * static_cast<double>(shape.rows * shape.cols * tokens) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.bytes()));
  count_weights(state, shape);
  force_isa(std::nullopt);
}

// Batched decode: one step of B sequences multiplies every weight by B tokens, with the weights coming from
// DRAM (rotated copies, as in BM_TernaryGemv).
void BM_TernaryBatch(benchmark::State& state, const LayerShape& shape) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t tokens = state.range(1);
  ThreadPool pool(threads);
  run_rotated(state, shape, tokens, pool);
  state.counters["GOPS"] = benchmark::Counter(
      2.0 * static_cast<double>(shape.rows * shape.cols * tokens) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// The 2B4T output head at decode: 128256 x 2560, f16 (as in the official files), int8 (per-row scales) or
// int4 (groups of 32). 657 / 328 / 185 MB: far past the L3, no rotation needed. 1 token (one sequence) or 8
// (a batched step of 8 sequences). With `vocab` rows 4096 (HeadGemvInCache) the matrix stays in the L2/L3, which
// times the kernel's arithmetic rather than the stream from DRAM.
void BM_HeadGemv(benchmark::State& state, HeadType head, int64_t vocab) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t tokens = state.range(1);
  ThreadPool pool(threads);
  constexpr int64_t kHidden = 2560;
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, 0.02f);
  Tensor w = Tensor::empty({vocab, kHidden});
  for (int64_t i = 0; i < w.numel(); ++i) w.data_as<float>()[i] = d(rng);
  std::vector<float> y(static_cast<size_t>(vocab * tokens));
  const AlignedVector<float> xf(static_cast<size_t>(kHidden * tokens), 0.5f);  // aligned as the engine's
  size_t bytes = 0;
  if (head == HeadType::int8) {
    const Int8Matrix m = Int8Matrix::quantize(w);
    w = Tensor();
    const QuantizedActivations x = random_activations(tokens, kHidden);
    bytes = m.bytes();
    for (auto _ : state) int8_matmul(m, x, y.data(), vocab, pool);
  } else if (head == HeadType::int4) {
    const Int4Matrix m = Int4Matrix::quantize(w);
    w = Tensor();
    const QuantizedActivations x = random_activations(tokens, kHidden);
    bytes = m.bytes();
    for (auto _ : state) int4_matmul(m, x, y.data(), vocab, pool);
  } else {
    const Tensor h = w.to(DType::f16);
    w = Tensor();
    bytes = h.nbytes();
    for (auto _ : state) f16_matmul(h, xf.data(), tokens, kHidden, y.data(), vocab, pool);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

// n-bit weights (per-group scales, group 128) x int8 activations on the 2560 x 6912 shape, 1 and 128 tokens.
void BM_NbitGemm(benchmark::State& state, int bits) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t tokens = state.range(1);
  ThreadPool pool(threads);
  constexpr int64_t kRows = 2560, kCols = 6912;
  std::mt19937 rng(4);
  std::normal_distribution<float> d(0.0f, 1.0f);
  Tensor w = Tensor::empty({kRows, kCols});
  for (int64_t i = 0; i < w.numel(); ++i) w.data_as<float>()[i] = d(rng);
  const NbitMatrix m = NbitMatrix::pack(quantize_weights(w, {bits, true, Granularity::per_group, 128}));
  const QuantizedActivations x = random_activations(tokens, kCols);
  std::vector<float> y(static_cast<size_t>(kRows * tokens));
  for (auto _ : state) nbit_matmul(m, x, y.data(), kRows, pool);
  state.counters["GOPS"] = benchmark::Counter(2.0 * kRows * kCols * static_cast<double>(tokens * state.iterations()),
                                              benchmark::Counter::kIsRate);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.bytes()));
}

void register_all() {
  for (HeadType head : {HeadType::f16, HeadType::int8, HeadType::int4}) {
    const std::string name = std::string(head_type_name(head));
    benchmark::RegisterBenchmark(("HeadGemv/" + name + "_128256x2560").c_str(), BM_HeadGemv, head, 128256)
        ->Args({1, 1})->Args({2, 1})->Args({2, 8})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("HeadGemvInCache/" + name + "_4096x2560").c_str(), BM_HeadGemv, head, 4096)
        ->Args({1, 1})->Args({2, 1})->Args({2, 8})->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  for (int bits : {1, 2, 4, 8})
    benchmark::RegisterBenchmark(("NbitGemm/" + std::to_string(bits) + "bit_2560x6912").c_str(), BM_NbitGemm, bits)
        ->Args({2, 1})->Args({2, 128})->UseRealTime()->Unit(benchmark::kMillisecond);
  for (const auto& s : shapes()) {
    auto* batch = benchmark::RegisterBenchmark(("TernaryBatch/" + s.name).c_str(), BM_TernaryBatch, s);
    for (int64_t tokens : {1, 2, 4, 6, 8, 12, 16}) batch->Args({2, tokens});
    batch->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  for (TernaryPacking p : {TernaryPacking::two_bit, TernaryPacking::base3}) {
    const std::string name =
        std::string("TernaryDecodeLayers/2B4T_12_layers") + (p == TernaryPacking::base3 ? "_base3" : "");
    benchmark::RegisterBenchmark(name.c_str(), BM_TernaryDecodeLayers, p)
        ->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("StreamRead", BM_StreamRead)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  for (Isa isa : {Isa::avx512, Isa::avxvnni, Isa::avx2, Isa::neon, Isa::ref}) {
    if (kernels::ternary_family().variant(isa) == nullptr) continue;
    for (const auto& s : shapes()) {
      const std::string suffix = s.name + "/" + std::string(isa_name(isa));
      auto* gemv = benchmark::RegisterBenchmark(("TernaryGemv/" + suffix).c_str(), BM_TernaryGemv, s, isa);
      gemv->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
      if (isa == Isa::ref) continue;  // the scalar reference is too slow to be worth timing on GEMM
      auto* gemm = benchmark::RegisterBenchmark(("TernaryGemm/" + suffix).c_str(), BM_TernaryGemm, s, isa);
      gemm->Args({1, 1})->Args({2, 1})->Args({1, 128})->Args({2, 128})->Args({2, 512});
      gemm->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("cpu_features", cpu_feature_list(cpu_features()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
