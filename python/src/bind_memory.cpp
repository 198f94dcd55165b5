// The library's allocation counters (memory.h) and thread count, for leak checks and tuning from Python.
#include <bitnet/error.h>
#include <bitnet/memory.h>
#include <bitnet/thread_pool.h>

#include <mutex>

#include "bindings.h"
#include "pool_guard.h"

namespace bitnet::python {

namespace py = pybind11;

std::shared_mutex& pool_use_mutex() {
  static std::shared_mutex mutex;
  return mutex;
}

void bind_memory(py::module_& m) {
  m.def(
      "memory_stats",
      [] {
        const MemoryStats s = memory_stats();
        py::dict d;
        d["live_bytes"] = s.live_bytes;
        d["peak_bytes"] = s.peak_bytes;
        d["allocations"] = s.allocations;
        d["live_allocations"] = s.live_allocations;
        d["cached_bytes"] = cached_memory_bytes();
        return d;
      },
      "The library's own allocation counters: live/peak bytes, allocation calls, live allocations, and the bytes "
      "held by its cache of freed large blocks.");
  m.def("release_cached_memory", &release_cached_memory, "Returns the cache of freed large blocks to the system.");
  m.def("reset_peak_memory", &reset_peak_memory);
  m.def(
      "set_num_threads",
      [](int n) {
        std::unique_lock lock(pool_use_mutex(), std::try_to_lock);
        BITNET_CHECK(lock.owns_lock(),
                     "[threads] cannot change the thread count while a generation or kernel call is running");
        set_default_thread_count(n);
      },
      py::arg("n"), "Replaces the process-wide thread pool (what the CLI's -t does).");
  m.def("num_threads", [] { return default_pool().size(); });
}

}  // namespace bitnet::python
