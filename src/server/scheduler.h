#pragma once
// Continuous batching: one thread owns the engine. Each step it admits waiting jobs into free KV-cache slots,
// then runs one engine.decode() holding one token for every slot that is generating plus a chunk of the prompt
// of each slot still prefilling (up to the batch size, decodes first so they are never starved), and hands
// each slot's logits to its job's SequenceGenerator. Jobs beyond the slots wait in a bounded FIFO queue.
// A slot's KV cache outlives its job: the next job goes to the free slot whose cached tokens share the longest
// prefix with its prompt, and only the rest of the prompt is evaluated (llama-server's cache_prompt).
#include <bitnet/engine.h>
#include <bitnet/tokenizer.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "server/job.h"

namespace bitnet::server {

struct SchedulerOptions {
  int slots = 1;            // sequences decoded together (KV-cache slots)
  int64_t context = 2048;   // positions per slot
  int64_t batch = 512;      // tokens per engine step
  int max_queue = 64;       // jobs that may wait for a slot; more are refused
  KvCacheTypes kv_cache;    // the KV cache's element types
};

// Counters for /metrics, updated by the scheduler thread, read by anyone.
struct SchedulerCounters {
  std::atomic<uint64_t> prompt_tokens{0}, generated_tokens{0}, decode_steps{0};
  std::atomic<uint64_t> cached_prompt_tokens{0};
  std::atomic<uint64_t> context_shifts{0};        // --context-shift: times a full slot forgot half its history  // prompt tokens taken from a slot's cache instead of evaluated
  std::atomic<uint64_t> jobs_finished{0}, jobs_cancelled{0}, jobs_failed{0};
  std::atomic<double> prompt_seconds{0}, generate_seconds{0};  // step time shared out by tokens
  std::atomic<double> first_token_seconds{0};                  // sum over jobs: submit -> first token
  std::atomic<uint64_t> first_token_count{0};
  std::atomic<int> busy_slots{0}, queued{0};
};

class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer& tokenizer, const SchedulerOptions& options);
  ~Scheduler();  // stops the thread; jobs not finished fail with "the server is shutting down"
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admission { accepted, queue_full, closed };
  Admission submit(std::shared_ptr<Job> job);

  // Refuse new jobs from now on (those admitted or queued go on).
  void close();
  // Waits until no job is running or queued, up to `timeout`; true when idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Ends every running and queued job now with `reason` as its error.
  void fail_all(const std::string& reason);

  // Runs `task` on the scheduler thread between two steps, with the engine and the tokens slot `slot` holds in
  // its cache (which the task may change, keeping them true to the cache), and waits for it. Throws ApiError 409
  // when the slot is generating, 400 for a slot that does not exist; the task's own exceptions come through.
  using SlotTask = std::function<void(Engine& engine, std::vector<int32_t>& cached)>;
  void run_on_slot(int slot, SlotTask task);
  struct SlotInfo {
    int id;
    bool processing;
    int64_t cached_tokens;
  };
  std::vector<SlotInfo> slots_info();  // on the scheduler thread too

  const SchedulerOptions& options() const { return opt_; }
  const SchedulerCounters& counters() const { return counters_; }
  const Engine& engine() const { return engine_; }

 private:
  struct Slot {
    std::shared_ptr<Job> job;
    size_t prefilled = 0;     // prompt tokens already in this slot's cache
    int32_t next_token = -1;  // sampled, to be decoded at generator.position() - 1
    int logits_row = -1;      // this step's row in logits_, or -1
    bool first_token_seen = false;
  };

  void loop();
  void on_scheduler_thread(const std::function<void()>& fn);
  void admit_locked();
  void release(Slot& slot);
  bool idle_locked() const;
  void step();

  SchedulerOptions opt_;
  Engine engine_;
  const int64_t vocab_;
  std::vector<Slot> slots_;          // scheduler thread only (busy count mirrored in counters_)
  std::vector<std::vector<int32_t>> cached_;  // per slot: the tokens its KV cache holds at positions 0..n-1
  bool reuse_ok_;                    // false for dynamic NTK RoPE, whose frequencies change with the length
  std::vector<BatchToken> batch_;
  std::vector<float> logits_;        // [slots][vocab]
  SchedulerCounters counters_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // a job arrived, a job was cancelled, or stop
  std::condition_variable idle_;     // the last job finished
  std::deque<std::shared_ptr<Job>> queue_;
  std::deque<std::function<void()>> tasks_;  // run_on_slot / slots_info, run by loop() between steps
  int running_ = 0;                  // slots holding a job (guarded by mutex_, for wait_idle)
  bool closed_ = false, stop_ = false;
  std::string fail_reason_;          // set by fail_all: the loop fails every job with it
  std::thread thread_;
};

}  // namespace bitnet::server
