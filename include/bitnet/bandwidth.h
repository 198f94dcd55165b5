#pragma once
// This machine's streaming read bandwidth, measured the way the decode step reads weights: every thread of the
// pool sums its share of a buffer much larger than the last-level cache, allocated like the weights (2 MiB
// pages where the kernel grants them). The roofline of a memory-bound decode is this figure divided by the
// bytes each token reads.
#include <bitnet/thread_pool.h>

#include <cstddef>

namespace bitnet {

// Median of `reps` passes over `bytes` (default 256 MiB), in bytes per second.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{256} << 20, int reps = 7);

}  // namespace bitnet
