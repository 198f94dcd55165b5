#pragma once
// This machine's streaming read bandwidth, measured the way the decode step reads weights: every thread of the
// pool sums its share of a buffer much larger than the last-level cache, allocated like the weights (2 MiB
// pages where the kernel grants them) and filled with pseudo-random data. The roofline of a memory-bound
// decode is this figure divided by the bytes each token reads.
#include <bitnet/tensor.h>
#include <bitnet/thread_pool.h>

#include <cstddef>

namespace bitnet {

// A buffer kept for repeated measurements (`bitnet bench` measures before and after each generation run,
// because the bandwidth of a shared machine moves from minute to minute).
class ReadBandwidthProbe {
 public:
  explicit ReadBandwidthProbe(size_t bytes = size_t{256} << 20);
  // Median of `reps` passes over the buffer, in bytes per second.
  double measure(ThreadPool& pool, int reps = 7) const;
  size_t bytes() const { return words_ * 8; }

 private:
  size_t words_;
  Tensor storage_;
};

// One probe, measured once: median of `reps` passes over `bytes` (default 256 MiB), in bytes per second.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{256} << 20, int reps = 7);

}  // namespace bitnet
