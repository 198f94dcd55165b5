// CUDA kernel timings: each kernel launched many times inside one CUDA graph (no launch gaps), cycling over
// enough weight copies that their total exceeds 2.5x the L2 cache, so the figure is HBM's, not L2's. Reports
// time per call, GB/s of weight bytes, and that as a share of the device-to-device copy bandwidth measured in
// the same run (bytes read + written). Prefill GEMM: TOPS and the share of the int8 tensor-core peak.
// Output: a markdown table and one JSON object per line (prefixed "JSON ").
#include <bitnet/cuda.h>
#include <bitnet/error.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda/device_buffer.h"
#include "cuda/gpu_layout_math.h"
#include "cuda/kernels.h"

namespace bitnet::cuda {
namespace {

struct Timer {
  cudaEvent_t a, b;
  Timer() {
    BITNET_CUDA_CHECK(cudaEventCreate(&a));
    BITNET_CUDA_CHECK(cudaEventCreate(&b));
  }
  ~Timer() {
    (void)cudaEventDestroy(a);
    (void)cudaEventDestroy(b);
  }
};

// Median of `reps` replays of a graph holding `calls` launches made by enqueue(i, stream); seconds per call.
template <class F>
double time_graph(int calls, int reps, F enqueue) {
  cudaStream_t s;
  BITNET_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  BITNET_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < calls; ++i) enqueue(i, s);
  cudaGraph_t g;
  BITNET_CUDA_CHECK(cudaStreamEndCapture(s, &g));
  cudaGraphExec_t e;
  BITNET_CUDA_CHECK(cudaGraphInstantiate(&e, g, 0));
  BITNET_CUDA_CHECK(cudaGraphLaunch(e, s));  // warm-up
  BITNET_CUDA_CHECK(cudaStreamSynchronize(s));
  Timer t;
  std::vector<double> samples;
  for (int r = 0; r < reps; ++r) {
    BITNET_CUDA_CHECK(cudaEventRecord(t.a, s));
    BITNET_CUDA_CHECK(cudaGraphLaunch(e, s));
    BITNET_CUDA_CHECK(cudaEventRecord(t.b, s));
    BITNET_CUDA_CHECK(cudaEventSynchronize(t.b));
    float ms = 0;
    BITNET_CUDA_CHECK(cudaEventElapsedTime(&ms, t.a, t.b));
    samples.push_back(ms * 1e-3 / calls);
  }
  (void)cudaGraphExecDestroy(e);
  (void)cudaGraphDestroy(g);
  (void)cudaStreamDestroy(s);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

double copy_bandwidth() {
  const size_t bytes = size_t{1} << 30;
  DeviceBuffer a(bytes, "copy source"), b(bytes, "copy target");
  BITNET_CUDA_CHECK(cudaMemset(a.get(), 1, bytes));
  const double s = time_graph(10, 5, [&](int, cudaStream_t st) {
    BITNET_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, st));
  });
  return 2.0 * static_cast<double>(bytes) / s;  // read + written
}

// Random weight codes in {0, 1, 2} (byte = four codes), the layout's real byte statistics.
std::vector<uint8_t> random_codes(size_t bytes, std::mt19937& rng) {
  std::vector<uint8_t> valid;
  for (int b = 0; b < 256; ++b)
    if ((b & 3) != 3 && ((b >> 2) & 3) != 3 && ((b >> 4) & 3) != 3 && ((b >> 6) & 3) != 3) valid.push_back(static_cast<uint8_t>(b));
  std::uniform_int_distribution<size_t> d(0, valid.size() - 1);
  std::vector<uint8_t> v(bytes);
  for (auto& x : v) x = valid[d(rng)];
  return v;
}

struct Shape {
  const char* name;
  int64_t rows, cols;
};

double int8_peak_tops(const std::string& name) {
  if (const char* e = std::getenv("BITNET_INT8_PEAK_TOPS")) return std::atof(e);
  if (name.find("H100") != std::string::npos && name.find("PCIe") != std::string::npos) return 1513;
  if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos) return 1979;  // dense, SXM
  if (name.find("A100") != std::string::npos) return 624;
  return 0;
}

int run() {
  std::string why;
  if (device_count(&why) == 0) {
    fmt::print("cuda_kernel_bench: skipped: {}\n", why);
    return 0;
  }
  const DeviceInfo info = device_info(0);
  const double bw = copy_bandwidth();
  const double peak = int8_peak_tops(info.name);
  fmt::print("device: {} ({} SMs, L2 {} MiB, {:.1f} GiB); d2d copy: {:.0f} GB/s (read + written); int8 peak assumed: {} TOPS\n\n",
             info.name, info.multiprocessors, info.l2_bytes >> 20, info.total_memory / 1073741824.0, bw / 1e9, peak);
  fmt::print("JSON {{\"test\":\"d2d_copy\",\"gb_s\":{:.1f},\"device\":\"{}\"}}\n", bw / 1e9, info.name);
  fmt::print("| kernel | shape | rows x cols | tokens | copies | us/call | weight GB/s | % of copy BW | TOPS | % int8 peak |\n");
  fmt::print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  std::mt19937 rng(7);
  const Shape shapes[] = {{"qkv", 3840, 2560}, {"o", 2560, 2560}, {"gate|up", 13824, 2560}, {"down", 2560, 6912},
                          {"square", 16384, 16384}};
  const int64_t max_tokens = 512;
  for (const Shape& sh : shapes) {
    const int64_t k_pad = (sh.cols + kGpuKAlign - 1) / kGpuKAlign * kGpuKAlign;
    const size_t wbytes = static_cast<size_t>((sh.rows + 3) / 4 * 4 * k_pad / 4);
    const int copies = static_cast<int>(std::max<size_t>(2, (5 * info.l2_bytes / 2 + wbytes - 1) / wbytes));
    const auto codes = random_codes(wbytes, rng);
    std::vector<DeviceBuffer> w;
    for (int c = 0; c < copies; ++c) {
      w.emplace_back(wbytes, "weights");
      w.back().upload(std::span<const uint8_t>(codes));
    }
    const std::vector<float> ones(static_cast<size_t>(sh.rows), 1.0f);
    DeviceBuffer scales(2 * ones.size() * sizeof(float));
    scales.upload(std::span<const float>(ones));
    scales.upload(std::span<const float>(ones), ones.size() * sizeof(float));
    std::vector<int8_t> xq(static_cast<size_t>(max_tokens * k_pad));
    std::uniform_int_distribution<int> xd(-127, 127);
    for (auto& v : xq) v = static_cast<int8_t>(xd(rng));
    DeviceBuffer x(xq.size()), dq(max_tokens * sizeof(float)), sums(max_tokens * sizeof(int32_t));
    x.upload(std::span<const int8_t>(xq));
    BITNET_CUDA_CHECK(cudaMemset(dq.get(), 0, dq.bytes()));
    BITNET_CUDA_CHECK(cudaMemset(sums.get(), 0, sums.bytes()));
    DeviceBuffer y(static_cast<size_t>(max_tokens * sh.rows) * sizeof(float));
    auto view = [&](int c) {
      return DevTernary{w[static_cast<size_t>(c)].as<uint8_t>(), scales.as<float>(), scales.as<float>() + sh.rows, sh.rows, k_pad};
    };
    const DevActs acts{x.as<int8_t>(), dq.as<float>(), sums.as<int32_t>(), k_pad};
    for (int tokens : {1, 8, 512}) {
      const bool gemm = tokens > kGemvMaxTokens;
      if (gemm && sh.rows == 16384) continue;  // the square shape is a bandwidth test
      const int calls = gemm ? copies * std::max(1, 20 / copies) : copies * std::max(1, 200 / copies);
      const double s = time_graph(calls, 5, [&](int i, cudaStream_t st) {
        ternary_matmul(view(i % copies), acts, tokens, y.as<float>(), sh.rows, false, st);
      });
      const double gbs = static_cast<double>(wbytes) / s / 1e9;
      const double tops = 2.0 * static_cast<double>(sh.rows * sh.cols) * tokens / s / 1e12;
      fmt::print("| {} | {} | {}x{} | {} | {} | {:.2f} | {:.0f} | {:.1f} | {:.1f} | {} |\n", gemm ? "ternary_gemm" : "ternary_gemv",
                 sh.name, sh.rows, sh.cols, tokens, copies, s * 1e6, gbs, 100.0 * gbs * 1e9 / bw, tops,
                 peak > 0 ? fmt::format("{:.1f}", 100.0 * tops / peak) : "n/a");
      fmt::print("JSON {{\"test\":\"{}\",\"shape\":\"{}\",\"rows\":{},\"cols\":{},\"tokens\":{},\"copies\":{},\"us\":{:.3f},"
                 "\"gb_s\":{:.1f},\"pct_copy_bw\":{:.1f},\"tops\":{:.2f},\"pct_int8_peak\":{:.2f}}}\n",
                 gemm ? "ternary_gemm" : "ternary_gemv", sh.name, sh.rows, sh.cols, tokens, copies, s * 1e6, gbs,
                 100.0 * gbs * 1e9 / bw, tops, peak > 0 ? 100.0 * tops / peak : 0.0);
    }
  }
  return 0;
}

}  // namespace
}  // namespace bitnet::cuda

int main() {
  try {
    return bitnet::cuda::run();
  } catch (const std::exception& e) {
    fmt::print(stderr, "cuda_kernel_bench: error: {}\n", e.what());
    return 1;
  }
}
