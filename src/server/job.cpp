#include "server/job.h"

namespace bitnet::server {

JobUpdate Job::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return over_ || !pending_.text.empty() || !pending_.logprobs.empty(); });
  JobUpdate out = std::move(pending_);
  pending_ = JobUpdate{};
  pending_.completion_tokens = out.completion_tokens;
  pending_.cached_tokens = out.cached_tokens;
  // The end is reported with every later wait too, so a handler never waits on a job that is over.
  pending_.done = out.done;
  pending_.finish_reason = out.finish_reason;
  pending_.stop_word = out.stop_word;
  pending_.error = out.error;
  pending_.error_status = out.error_status;
  return out;
}

void Job::cancel() {
  cancelled_.store(true, std::memory_order_relaxed);
}

void Job::publish_step() {
  std::string text = generator_.take_text();
  std::vector<TokenLogprob> logprobs = generator_.take_logprobs();
  {
    std::lock_guard lock(mutex_);
    pending_.text.append(text);
    for (TokenLogprob& lp : logprobs) pending_.logprobs.push_back(std::move(lp));
    pending_.completion_tokens = static_cast<int>(generator_.tokens().size());
    if (generator_.finished()) {
      over_ = pending_.done = true;
      pending_.finish_reason = generator_.finish_reason();
      pending_.stop_word = generator_.stop_word();
    }
  }
  changed_.notify_all();
}

void Job::set_cached_tokens(int n) {
  std::lock_guard lock(mutex_);
  pending_.cached_tokens = n;
}

void Job::fail(int status, std::string error) {
  {
    std::lock_guard lock(mutex_);
    over_ = pending_.done = true;
    pending_.error_status = status;
    pending_.error = std::move(error);
  }
  changed_.notify_all();
}

}  // namespace bitnet::server
