#pragma once
// A persistent thread pool for data-parallel loops. A decode step runs hundreds of parallel regions, so a
// region costs a few microseconds: workers spin briefly for new work before they sleep.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace bitnet {

// A non-owning reference to a callable: no allocation, unlike std::function.
class RangeFn {
 public:
  template <class F>
  RangeFn(F& fn)  // NOLINT: implicit by design
      : object_(&fn), call_([](void* o, int64_t b, int64_t e) { (*static_cast<F*>(o))(b, e); }) {}
  void operator()(int64_t begin, int64_t end) const { call_(object_, begin, end); }

 private:
  void* object_;
  void (*call_)(void*, int64_t, int64_t);
};

class ThreadPool {
 public:
  // n_threads counts the calling thread: a pool of 2 starts one worker.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Splits [0, n) into contiguous chunks of at least `min_chunk` items (a few per thread) and calls
  // fn(begin, end) for each; the calling thread and the workers claim chunks until none are left, so a
  // worker the OS has not scheduled yet delays the region by at most one chunk. Returns when all are done.
  // A call made from inside a running region runs serially (no nested parallelism, no deadlock).
  template <class F>
  void parallel_for(int64_t n, F&& fn, int64_t min_chunk = 1) {
    auto& ref = fn;
    run(n, RangeFn(ref), min_chunk);
  }

  // For loops bound by streaming memory (decode's GEMVs): each thread owns one contiguous share of [0, n) and
  // works through it from the front in `pieces_per_share` steps, so it reads one long run; a thread whose share
  // is done takes the back half of the largest share left, and so on, so a slow or late thread holds the region
  // up by at most about one piece. Same contract as parallel_for otherwise. n must be below 2^22 (larger n falls
  // back to parallel_for).
  template <class F>
  void parallel_for_shares(int64_t n, F&& fn, int64_t pieces_per_share = 16) {
    auto& ref = fn;
    run_shares(n, RangeFn(ref), pieces_per_share);
  }

 private:
  void stop_workers();  // wakes, stops and joins every worker
  void run(int64_t n, RangeFn fn, int64_t min_chunk);
  void run_shares(int64_t n, RangeFn fn, int64_t pieces_per_share);
  // Publishes region `fn` over n items, takes part as slot 0, waits for the others and rethrows the first error.
  void run_region(int64_t n, RangeFn& fn, bool shares, int64_t chunks_or_piece);
  void worker_loop(int slot);
  // Claims and runs chunks of region `gen` until none are left (or a newer region has started).
  void work_on(uint32_t gen);
  // The same for a share region: thread `slot`'s own share first, then the back halves of the others'.
  void work_on_shares(uint32_t gen, int slot);
  void run_items(int64_t begin, int64_t end);  // fn_ over [begin, end), errors kept, counted in done_

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;  // one region at a time from outside threads

  // The current region (written before `claim_` publishes it, read only after claiming one of its chunks).
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  // generation (32 bits) | chunk count (16 bits) | next unclaimed chunk (16 bits): one CAS claims a chunk of
  // the right region and never one of a later region.
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) std::atomic<int64_t> done_{0};        // items finished in the current region
  // Share regions: per thread, generation (20 bits) | begin (22) | end (22) of what is left of its share, and the
  // piece its owner claims at a time.
  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
  };
  std::unique_ptr<Share[]> shares_;
  std::atomic<bool> shares_mode_{false};
  std::atomic<int64_t> piece_{1};
  alignas(64) std::atomic<uint32_t> generation_{0};  // wakes the workers
  std::atomic<bool> stop_{false};
};

// Thread count: BITNET_THREADS if set, else the hardware's logical CPUs.
int default_thread_count();
// The process-wide pool, created on first use with default_thread_count() threads.
ThreadPool& default_pool();
// Replaces the process-wide pool (what `-t N` does). Not safe while a region is running.
void set_default_thread_count(int n_threads);

template <class F>
void parallel_for(int64_t n, F&& fn, int64_t min_chunk = 1) {
  default_pool().parallel_for(n, std::forward<F>(fn), min_chunk);
}

}  // namespace bitnet
