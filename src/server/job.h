#pragma once
// One generation request as the scheduler thread and an HTTP handler thread share it: the scheduler owns the
// prompt and the SequenceGenerator once the job is submitted and publishes text as it becomes final; the
// handler waits for news, and cancels the job when its client goes away.
#include <bitnet/sequence_generator.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace bitnet::server {

using Clock = std::chrono::steady_clock;

// What the handler learns from one wait(): the text and log-probabilities released since the previous call,
// and, once the job is over, why.
struct JobUpdate {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  int completion_tokens = 0;      // tokens generated so far
  int cached_tokens = 0;          // prompt tokens found in the slot's cache (not evaluated again)
  bool done = false;
  std::string finish_reason;      // "stop" or "length" when done without error
  std::string stop_word;          // the stop string that ended it, if one did
  std::string error;              // set when the job ended without finishing (e.g. the server is shutting down)
  int error_status = 0;           // the HTTP status that error maps to (503 shutdown or cancel, 500 internal)
};

class Job {
 public:
  // cache_prompt: the scheduler may start from a slot's cached prefix of this prompt (llama-server's field).
  Job(std::vector<int32_t> prompt, SequenceGenerator generator, bool cache_prompt = true)
      : prompt_(std::move(prompt)), generator_(std::move(generator)), submitted_(Clock::now()),
        cache_prompt_(cache_prompt) {}

  // ---- handler side ----
  // Waits up to `timeout` for new text or the end; returns what arrived since the previous call.
  JobUpdate wait(std::chrono::milliseconds timeout);
  // The client went away: the scheduler frees the job's slot before its next decode step.
  void cancel();

  // ---- scheduler side ----
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  const std::vector<int32_t>& prompt() const { return prompt_; }
  SequenceGenerator& generator() { return generator_; }
  Clock::time_point submitted() const { return submitted_; }
  bool cache_prompt() const { return cache_prompt_; }
  // The prompt tokens the slot already held (reported in the usage as cached_tokens).
  void set_cached_tokens(int n);
  // Publishes what the generator released in the last step (and its end, when it has finished).
  void publish_step();
  // Ends the job without a finished generation; the handler reports `error` (HTTP `status`).
  void fail(int status, std::string error);

 private:
  const std::vector<int32_t> prompt_;
  SequenceGenerator generator_;
  const Clock::time_point submitted_;
  const bool cache_prompt_;
  std::atomic<bool> cancelled_{false};

  std::mutex mutex_;
  std::condition_variable changed_;
  JobUpdate pending_;   // accumulated since the handler's last wait()
  bool over_ = false;
};

}  // namespace bitnet::server
