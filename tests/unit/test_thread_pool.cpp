#include <bitnet/error.h>
#include <bitnet/thread_pool.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <vector>

namespace bitnet {
namespace {

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int rep = 0; rep < 20; ++rep) {
        pool.parallel_for(n, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
      }
      for (auto& h : hits) ASSERT_EQ(h.load(), 20) << threads << " threads, n=" << n;
    }
  }
}

TEST(ThreadPool, ChunksAreContiguousAndRespectMinChunk) {
  ThreadPool pool(4);
  std::atomic<int> calls{0};
  pool.parallel_for(10, [&](int64_t b, int64_t e) {
    EXPECT_GE(e - b, 5);
    calls++;
  }, 5);
  EXPECT_EQ(calls.load(), 2);
}

TEST(ThreadPool, NestedRegionsRunSerially) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  pool.parallel_for(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallel_for(10, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
  });
  EXPECT_EQ(total.load(), 40);
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(100, [](int64_t b, int64_t) {
    if (b > 0) fail("boom in a worker");
  }), Error);
  EXPECT_THROW(pool.parallel_for(100, [](int64_t b, int64_t) {
    if (b == 0) fail("boom in the caller");
  }), Error);
  std::atomic<int> ok{0};
  pool.parallel_for(2, [&](int64_t, int64_t) { ok++; });  // still usable
  EXPECT_EQ(ok.load(), 2);
}

TEST(ThreadPool, ThreadCountFromEnvironment) {
  setenv("BITNET_THREADS", "3", 1);
  EXPECT_EQ(default_thread_count(), 3);
  setenv("BITNET_THREADS", "zero", 1);
  EXPECT_THROW(default_thread_count(), Error);
  unsetenv("BITNET_THREADS");
  EXPECT_GE(default_thread_count(), 1);
  set_default_thread_count(2);
  EXPECT_EQ(default_pool().size(), 2);
  EXPECT_THROW(set_default_thread_count(0), Error);
}

}  // namespace
}  // namespace bitnet
