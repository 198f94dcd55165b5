#include <bitnet/error.h>
#include <bitnet/thread_pool.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string_view>
#include <system_error>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bitnet {

namespace {
thread_local bool t_in_region = false;

// Spins before sleeping: a decode step issues regions back to back, and waking a sleeping thread costs
// tens of microseconds while a spinning one answers in well under one.
constexpr int kSpinIterations = 1 << 14;

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

std::mutex g_error_mutex;
}  // namespace


ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  shares_ = std::make_unique<Share[]>(static_cast<size_t>(n_threads_));
  try {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  } catch (const std::system_error& e) {
    // Under a pids or memory limit a thread can fail to start: stop and join the ones that did (destroying a
    // joinable std::thread would terminate the process) and say what happened.
    const size_t started = workers_.size();
    stop_workers();
    fail("[threads] could only start {} of {} threads ({}); use fewer (-t / BITNET_THREADS)", started + 1,
         n_threads_, e.what());
  }
}

void ThreadPool::stop_workers() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

ThreadPool::~ThreadPool() { stop_workers(); }

namespace {
std::exception_ptr g_region_error;  // first exception thrown inside the current region
constexpr uint64_t pack_claim(uint32_t gen, uint32_t chunks, uint32_t next) {
  return (uint64_t{gen} << 32) | (uint64_t{chunks} << 16) | next;
}
// A share's word: the region's generation (low 20 bits), then begin and end (22 bits each).
constexpr int kShareBits = 22;
constexpr uint64_t kShareMask = (uint64_t{1} << kShareBits) - 1;
constexpr uint64_t kShareGenMask = (uint64_t{1} << (64 - 2 * kShareBits)) - 1;
constexpr uint64_t pack_share(uint32_t gen, int64_t begin, int64_t end) {
  return ((gen & kShareGenMask) << (2 * kShareBits)) | (static_cast<uint64_t>(begin) << kShareBits) |
         static_cast<uint64_t>(end);
}
constexpr uint32_t share_gen(uint64_t w) { return static_cast<uint32_t>(w >> (2 * kShareBits)); }
constexpr int64_t share_begin(uint64_t w) { return static_cast<int64_t>((w >> kShareBits) & kShareMask); }
constexpr int64_t share_end(uint64_t w) { return static_cast<int64_t>(w & kShareMask); }
}  // namespace

void ThreadPool::run_items(int64_t begin, int64_t end) {
  t_in_region = true;
  try {
    if (begin < end) (*fn_)(begin, end);
  } catch (...) {
    std::lock_guard lock(g_error_mutex);
    if (!g_region_error) g_region_error = std::current_exception();
  }
  t_in_region = false;
  done_.fetch_add(end - begin, std::memory_order_acq_rel);
}

void ThreadPool::work_on(uint32_t gen) {
  uint64_t state = claim_.load(std::memory_order_acquire);
  while (true) {
    const auto g = static_cast<uint32_t>(state >> 32);
    const auto chunks = static_cast<uint32_t>((state >> 16) & 0xffff);
    const auto next = static_cast<uint32_t>(state & 0xffff);
    if (g != gen || next >= chunks) return;
    if (!claim_.compare_exchange_weak(state, pack_claim(g, chunks, next + 1), std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      continue;
    // The region cannot end (nor fn_/n_ change) before this claimed chunk is counted as done.
    run_items(n_ * next / chunks, n_ * (next + 1) / chunks);
    state = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::work_on_shares(uint32_t gen, int slot) {
  const uint32_t tag = gen & kShareGenMask;
  // The own share, from the front: consecutive pieces are adjacent, so the thread streams one run of memory.
  Share& own = shares_[static_cast<size_t>(slot)];
  uint64_t w = own.range.load(std::memory_order_acquire);
  while (share_gen(w) == tag && share_begin(w) < share_end(w)) {
    const int64_t b = share_begin(w), e = share_end(w);
    // A newer region's piece (read late) only sizes a claim that then fails on the generation.
    const int64_t nb = std::min(e, b + std::max<int64_t>(1, piece_.load(std::memory_order_relaxed)));
    if (own.range.compare_exchange_weak(w, pack_share(gen, nb, e), std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      run_items(b, nb);
      w = own.range.load(std::memory_order_acquire);
    }
  }
  if (share_gen(w) != tag) return;
  // Then the back half of the largest share left, until none is.
  while (true) {
    int victim = -1;
    uint64_t vw = 0;
    int64_t most = 0;
    for (int i = 0; i < n_threads_; ++i) {
      const uint64_t x = shares_[static_cast<size_t>(i)].range.load(std::memory_order_acquire);
      if (share_gen(x) != tag) return;  // a newer region: this one is over
      if (share_end(x) - share_begin(x) > most) {
        most = share_end(x) - share_begin(x);
        victim = i;
        vw = x;
      }
    }
    if (victim < 0) return;
    const int64_t b = share_begin(vw), e = share_end(vw), take = (e - b + 1) / 2;
    if (shares_[static_cast<size_t>(victim)].range.compare_exchange_strong(
            vw, pack_share(gen, b, e - take), std::memory_order_acq_rel, std::memory_order_acquire))
      run_items(e - take, e);
  }
}

void ThreadPool::worker_loop(int slot) {
  uint32_t seen = 0;
  while (true) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen; ++spin) {
      if (spin < kSpinIterations) {
        cpu_relax();
      } else {
        generation_.wait(seen, std::memory_order_acquire);
      }
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_relaxed)) return;
    // The mode may already be a newer region's; then both claims fail on the generation and return.
    if (shares_mode_.load(std::memory_order_acquire)) {
      work_on_shares(g, slot);
    } else {
      work_on(g);
    }
  }
}

void ThreadPool::run(int64_t n, RangeFn fn, int64_t min_chunk) {
  if (n <= 0) return;
  // A thread that finishes early waits on average half a chunk for the last one: with 8 chunks per thread
  // that is 1/32 of a decode matmul (tg128 with the int8 head: 34.9/33.1/35.2 t/s against 32.8/36.4/30.1
  // with 4, interleaved runs on the noisy 2-core VM -- within its noise, kept for the smaller wait).
  constexpr int64_t kChunksPerThread = 8;
  const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk));
  const auto chunks = static_cast<uint32_t>(std::min<int64_t>({n_threads_ * kChunksPerThread, max_chunks, 0xffff}));
  if (n_threads_ == 1 || chunks == 1 || t_in_region) {
    fn(0, n);
    return;
  }
  run_region(n, fn, false, chunks);
}

void ThreadPool::run_shares(int64_t n, RangeFn fn, int64_t pieces_per_share) {
  if (n <= 0) return;
  if (n > static_cast<int64_t>(kShareMask)) return run(n, fn, 1);
  if (n_threads_ == 1 || n == 1 || t_in_region) {
    fn(0, n);
    return;
  }
  run_region(n, fn, true, std::max<int64_t>(1, n / n_threads_ / std::max<int64_t>(1, pieces_per_share)));
}

void ThreadPool::run_region(int64_t n, RangeFn& fn, bool shares, int64_t chunks_or_piece) {
  std::lock_guard lock(submit_mutex_);
  fn_ = &fn;
  n_ = n;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
  if (shares) {
    piece_.store(chunks_or_piece, std::memory_order_relaxed);
    for (int i = 0; i < n_threads_; ++i)
      shares_[static_cast<size_t>(i)].range.store(pack_share(gen, n * i / n_threads_, n * (i + 1) / n_threads_),
                                                  std::memory_order_release);
  } else {
    claim_.store(pack_claim(gen, static_cast<uint32_t>(chunks_or_piece), 0), std::memory_order_release);
  }
  shares_mode_.store(shares, std::memory_order_release);
  generation_.store(gen, std::memory_order_release);
  generation_.notify_all();

  if (shares) {
    work_on_shares(gen, 0);
  } else {
    work_on(gen);
  }
  for (int spin = 0; done_.load(std::memory_order_acquire) != n; ++spin) {
    if (spin < kSpinIterations) cpu_relax();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
  std::exception_ptr error;
  {
    std::lock_guard elock(g_error_mutex);
    std::swap(error, g_region_error);
  }
  if (error) std::rethrow_exception(error);
}

// --- the process-wide pool -----------------------------------------------------------------------------------
namespace {
std::mutex g_pool_mutex;
std::unique_ptr<ThreadPool> g_pool;
}  // namespace

int default_thread_count() {
  if (const char* env = std::getenv("BITNET_THREADS"); env != nullptr && *env != '\0') {
    const std::string_view text(env);
    int n = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    BITNET_CHECK(ec == std::errc() && ptr == text.data() + text.size() && n >= 1 && n <= 1024,
                 "[threads] BITNET_THREADS='{}' is not a thread count between 1 and 1024", text);
    return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadPool& default_pool() {
  std::lock_guard lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(default_thread_count());
  return *g_pool;
}

void set_default_thread_count(int n_threads) {
  BITNET_CHECK(n_threads >= 1 && n_threads <= 1024, "[threads] thread count {} is not between 1 and 1024",
               n_threads);
  std::lock_guard lock(g_pool_mutex);
  if (g_pool && g_pool->size() == n_threads) return;
  g_pool = std::make_unique<ThreadPool>(n_threads);
}

}  // namespace bitnet
