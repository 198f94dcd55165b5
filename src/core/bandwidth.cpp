// Streaming read bandwidth (include/bitnet/bandwidth.h). The inner loop is plain C++ over 64-bit words with
// eight independent sums, which the compiler vectorizes for the baseline ISA: a core issues loads far faster
// than DRAM delivers them, so the ISA does not change the figure.
#include <bitnet/bandwidth.h>
#include <bitnet/tensor.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace bitnet {

ReadBandwidthProbe::ReadBandwidthProbe(size_t bytes) : words_(std::max<size_t>(bytes / 8, 1024)) {
  storage_ = Tensor::empty({static_cast<int64_t>(words_ * 8)}, DType::u8);
  // Pseudo-random words (xorshift64), written once, which also touches every page. Not a constant: model
  // weights never are, and on this kind of VM a constant-filled buffer once read 43 GB/s in a minute where
  // random data read 30 (a host can serve identical pages from fewer physical ones). Random data can read
  // 55+ GB/s too in this VM's fast minutes, so `bitnet bench` probes next to every run.
  auto* fill = reinterpret_cast<uint64_t*>(storage_.data_as<uint8_t>());
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < words_; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    fill[i] = state;
  }
}

double ReadBandwidthProbe::measure(ThreadPool& pool, int reps) const {
  const size_t words = words_;
  const auto* data = reinterpret_cast<const uint64_t*>(storage_.data_as<uint8_t>());
  const int threads = pool.size();
  std::vector<uint64_t> sink(static_cast<size_t>(threads) * 8);  // one cache line per thread
  std::vector<double> rates;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(threads, [&](int64_t t0_, int64_t t1_) {
      for (int64_t t = t0_; t < t1_; ++t) {
        const size_t b = words * static_cast<size_t>(t) / threads, e = words * static_cast<size_t>(t + 1) / threads;
        uint64_t s[8] = {};
        size_t i = b;
        for (; i + 8 <= e; i += 8)
          for (int j = 0; j < 8; ++j) s[j] += data[i + j];
        for (; i < e; ++i) s[0] += data[i];
        uint64_t total = 0;
        for (uint64_t v : s) total += v;
        sink[static_cast<size_t>(t) * 8] = total;
      }
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(static_cast<double>(words * 8) / sec);
  }
  // The sums must be used, or the loads could be dropped.
  volatile uint64_t keep = 0;
  for (uint64_t v : sink) keep = keep + v;
  // The median: a pass the OS or a neighbour disturbed must not decide the roofline, in either direction.
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  return ReadBandwidthProbe(bytes).measure(pool, reps);
}

}  // namespace bitnet
