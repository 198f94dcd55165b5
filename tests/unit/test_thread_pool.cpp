#include <bitnet/error.h>
#include <bitnet/thread_pool.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <utility>
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

TEST(ThreadPool, SharesCoverEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 100, 1001, 5000}) {
      for (int64_t pieces : {1, 4, 16}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (int rep = 0; rep < 10; ++rep) {
          pool.parallel_for_shares(n, [&](int64_t b, int64_t e) {
            EXPECT_LT(b, e);
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
          }, pieces);
        }
        for (auto& h : hits) ASSERT_EQ(h.load(), 10) << threads << " threads, n=" << n << ", " << pieces << " pieces";
      }
    }
  }
  // Past the 22 bits a share can hold, the ordinary chunks take over.
  ThreadPool pool(2);
  const int64_t big = (int64_t{1} << 22) + 5;
  std::atomic<int64_t> total{0};
  pool.parallel_for_shares(big, [&](int64_t b, int64_t e) { total += e - b; });
  EXPECT_EQ(total.load(), big);
}

// The point of the shares: a thread that stalls inside its share holds the region up by one piece, not by the
// rest of its share. Here the worker sleeps in its first piece; the caller finishes its own share and then takes
// the back halves of the worker's until nothing is left, so it runs all but at most that piece and the next.
TEST(ThreadPool, SharesOfAStalledThreadGoToTheOthers) {
  ThreadPool pool(2);
  const auto caller = std::this_thread::get_id();
  constexpr int64_t kN = 1600, kPieces = 16;  // shares of 800, pieces of 50
  std::atomic<int64_t> by_caller{0};
  std::atomic<bool> slept{false};
  pool.parallel_for_shares(kN, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() == caller) {
      by_caller += e - b;
    } else if (!slept.exchange(true)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }, kPieces);
  EXPECT_GE(by_caller.load(), kN - 2 * kN / 2 / kPieces);
  // Each share is worked from its front: with 2 threads, what the caller runs below kN / 2 is its own share's
  // claims (it takes only from the other share), one adjacent run from 0 (empty if the worker took it all first).
  for (int rep = 0; rep < 20; ++rep) {
    std::vector<std::pair<int64_t, int64_t>> own;
    pool.parallel_for_shares(kN, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() == caller && b < kN / 2) own.emplace_back(b, e);  // only the caller writes
    }, kPieces);
    for (size_t i = 0; i < own.size(); ++i)
      ASSERT_EQ(own[i].first, i == 0 ? 0 : own[i - 1].second) << "piece " << i << " of the caller's share";
  }
}

TEST(ThreadPool, SharesRethrowAndNestSerially) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for_shares(300, [](int64_t b, int64_t) {
    if (b > 100) fail("boom in a share");
  }), Error);
  std::atomic<int64_t> total{0};
  pool.parallel_for_shares(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallel_for_shares(10, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
  });
  EXPECT_EQ(total.load(), 40);
  pool.parallel_for(100, [&](int64_t b, int64_t e) { total += e - b; });  // the chunked regions still work after
  EXPECT_EQ(total.load(), 140);
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
