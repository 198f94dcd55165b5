#include <bitnet/error.h>
#include <bitnet/thread_pool.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string_view>

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
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_chunk(int index) {
  if (index >= chunks_) return;
  const int64_t begin = n_ * index / chunks_;
  const int64_t end = n_ * (index + 1) / chunks_;
  if (begin < end) (*fn_)(begin, end);
}

namespace {
std::exception_ptr g_region_error;  // first exception thrown inside the current region
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t g = generation_.load(std::memory_order_acquire);
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
    t_in_region = true;
    try {
      run_chunk(index);
    } catch (...) {
      std::lock_guard lock(g_error_mutex);
      if (!g_region_error) g_region_error = std::current_exception();
    }
    t_in_region = false;
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(int64_t n, RangeFn fn, int64_t min_chunk) {
  if (n <= 0) return;
  const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk));
  const int chunks = static_cast<int>(std::min<int64_t>(n_threads_, max_chunks));
  if (chunks == 1 || t_in_region) {
    fn(0, n);
    return;
  }
  std::lock_guard lock(submit_mutex_);
  fn_ = &fn;
  n_ = n;
  chunks_ = chunks;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();

  std::exception_ptr own_error;
  t_in_region = true;
  try {
    run_chunk(0);
  } catch (...) {
    own_error = std::current_exception();
  }
  t_in_region = false;
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpinIterations) cpu_relax();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
  std::exception_ptr worker_error;
  {
    std::lock_guard elock(g_error_mutex);
    std::swap(worker_error, g_region_error);
  }
  if (own_error) std::rethrow_exception(own_error);
  if (worker_error) std::rethrow_exception(worker_error);
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
