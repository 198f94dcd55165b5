#pragma once
// The process-wide thread pool may only be replaced while nothing runs on it (thread_pool.h). Python code can
// call set_num_threads from any thread, also while a streamed generation runs in the background, so every
// binding that uses the pool holds this lock shared, and set_num_threads takes it exclusively or raises.
#include <shared_mutex>

namespace bitnet::python {

std::shared_mutex& pool_use_mutex();

// Held (shared) for the duration of a kernel call or a generation.
class PoolUse {
 public:
  PoolUse() : lock_(pool_use_mutex()) {}

 private:
  std::shared_lock<std::shared_mutex> lock_;
};

}  // namespace bitnet::python
