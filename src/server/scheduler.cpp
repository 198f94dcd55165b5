// The continuous-batching loop (see scheduler.h).
#include "server/scheduler.h"

#include <bitnet/error.h>
#include <fmt/format.h>

#include "server/api_error.h"

#include <cstdio>

namespace bitnet::server {

namespace {
void add(std::atomic<double>& a, double v) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}
}  // namespace

Scheduler::Scheduler(const Model& model, const Tokenizer& tokenizer, const SchedulerOptions& options)
    : opt_(options),
      engine_(model, options.context, options.slots, options.batch, nullptr, options.kv_cache),
      vocab_(model.config().vocab),
      slots_(static_cast<size_t>(options.slots)),
      cached_(static_cast<size_t>(options.slots)),
      reuse_ok_(model.config().rope_scaling.type != RopeType::dynamic),
      logits_(static_cast<size_t>(options.slots * model.config().vocab)) {
  BITNET_CHECK(options.max_queue >= 0, "[server] the queue size must be >= 0, got {}", options.max_queue);
  BITNET_CHECK(options.batch >= options.slots, "[server] the batch ({}) must hold one token per slot ({})",
               options.batch, options.slots);
  batch_.reserve(static_cast<size_t>(options.batch));
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    if (fail_reason_.empty()) fail_reason_ = "the server is shutting down";
  }
  wake_.notify_all();
  thread_.join();
}

Scheduler::Admission Scheduler::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard lock(mutex_);
    if (closed_ || stop_) return Admission::closed;
    // A job may wait only when every slot is taken; the queue bounds how many may wait.
    const int free_slots = opt_.slots - running_;
    if (static_cast<int>(queue_.size()) >= free_slots + opt_.max_queue) return Admission::queue_full;
    queue_.push_back(std::move(job));
    counters_.queued.store(static_cast<int>(queue_.size()));
  }
  wake_.notify_all();
  return Admission::accepted;
}

void Scheduler::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

bool Scheduler::idle_locked() const { return running_ == 0 && queue_.empty(); }

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [&] { return idle_locked(); });
}

void Scheduler::fail_all(const std::string& reason) {
  std::unique_lock lock(mutex_);
  fail_reason_ = reason;
  wake_.notify_all();
  idle_.wait(lock, [&] { return idle_locked(); });
  fail_reason_.clear();
}

// Moves queued jobs into free slots, first come first served; cancelled ones are dropped on the way.
void Scheduler::admit_locked() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->cancelled()) {
      (*it)->fail(503, "cancelled: the client went away");
      counters_.jobs_cancelled.fetch_add(1);
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  while (!queue_.empty() && running_ < opt_.slots) {
    std::shared_ptr<Job>& job = queue_.front();
    const std::vector<int32_t>& prompt = job->prompt();
    // The free slot whose cache shares the longest prefix with the prompt (any free one when none does).
    size_t best = slots_.size(), best_common = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].job) continue;
      size_t common = 0;
      if (reuse_ok_ && job->cache_prompt()) {
        const std::vector<int32_t>& c = cached_[i];
        const size_t n = std::min(c.size(), prompt.size());
        while (common < n && c[common] == prompt[common]) ++common;
      }
      if (best == slots_.size() || common > best_common) best = i, best_common = common;
    }
    Slot& s = slots_[best];
    s = Slot{};
    // At least the last prompt token is evaluated: its logits give the first token.
    s.prefilled = std::min(best_common, prompt.size() - 1);
    cached_[best].resize(s.prefilled);
    job->set_cached_tokens(static_cast<int>(s.prefilled));
    counters_.cached_prompt_tokens.fetch_add(s.prefilled);
    s.job = std::move(job);
    queue_.pop_front();
    ++running_;
  }
  counters_.queued.store(static_cast<int>(queue_.size()));
  counters_.busy_slots.store(running_);
}

void Scheduler::release(Slot& slot) {
  slot = Slot{};
  std::lock_guard lock(mutex_);
  --running_;
  counters_.busy_slots.store(running_);
  if (idle_locked()) idle_.notify_all();
}

// Runs `fn` on the scheduler thread between two steps and waits for it; its exception comes through.
void Scheduler::on_scheduler_thread(const std::function<void()>& fn) {
  std::packaged_task<void()> work(fn);
  std::future<void> done = work.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stop_) throw ApiError(503, "unavailable_error", "the server is shutting down");
    tasks_.push_back([&work] { work(); });
  }
  wake_.notify_all();
  done.get();
}

void Scheduler::run_on_slot(int slot, SlotTask task) {
  if (slot < 0 || slot >= opt_.slots)
    throw ApiError(400, "invalid_request_error", fmt::format("slot {} does not exist (0..{})", slot, opt_.slots - 1));
  on_scheduler_thread([this, slot, &task] {
    Slot& s = slots_[static_cast<size_t>(slot)];
    if (s.job) throw ApiError(409, "invalid_request_error", fmt::format("slot {} is processing a request", slot));
    task(engine_, cached_[static_cast<size_t>(slot)]);
  });
}

std::vector<Scheduler::SlotInfo> Scheduler::slots_info() {
  std::vector<SlotInfo> out;
  on_scheduler_thread([this, &out] {
    for (size_t i = 0; i < slots_.size(); ++i)
      out.push_back({static_cast<int>(i), slots_[i].job != nullptr, static_cast<int64_t>(cached_[i].size())});
  });
  return out;
}

void Scheduler::loop() {
  while (true) {
    std::string fail_reason;
    {
      std::unique_lock lock(mutex_);
      // The timeout lets cancelled queued jobs leave the queue while every slot is busy elsewhere.
      wake_.wait_for(lock, std::chrono::milliseconds(50),
                     [&] { return stop_ || !fail_reason_.empty() || running_ > 0 || !queue_.empty() || !tasks_.empty(); });
      while (!tasks_.empty()) {  // slot tasks run before admission, so an idle slot is not taken under them
        auto task = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        task();
        lock.lock();
      }
      fail_reason = fail_reason_;
      if (!fail_reason.empty()) {
        for (auto& job : queue_) job->fail(503, fail_reason);
        counters_.jobs_failed.fetch_add(queue_.size());
        queue_.clear();
        counters_.queued.store(0);
      } else {
        admit_locked();
      }
    }
    for (Slot& s : slots_) {
      if (!s.job) continue;
      if (!fail_reason.empty()) {
        s.job->fail(503, fail_reason);
        counters_.jobs_failed.fetch_add(1);
        release(s);
      } else if (s.job->cancelled()) {
        s.job->fail(503, "cancelled: the client went away");
        counters_.jobs_cancelled.fetch_add(1);
        release(s);
      }
    }
    {
      std::lock_guard lock(mutex_);
      if (idle_locked()) idle_.notify_all();
      if (stop_ && idle_locked()) return;
      if (running_ == 0) continue;
    }
    try {
      step();
    } catch (const std::exception& e) {
      // An engine error is not the clients' fault and must not take the server down: fail the jobs in flight.
      std::fprintf(stderr, "bitnet serve: decode step failed: %s\n", e.what());
      for (Slot& s : slots_)
        if (s.job) {
          s.job->fail(500, std::string("internal error: ") + e.what());
          counters_.jobs_failed.fetch_add(1);
          release(s);
        }
    }
  }
}

void Scheduler::step() {
  batch_.clear();
  int rows = 0;
  int64_t decode_tokens = 0, prompt_tokens = 0;
  // Generating slots first: one token each.
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    s.logits_row = -1;
    if (!s.job || s.prefilled < s.job->prompt().size()) continue;
    SequenceGenerator& gen = s.job->generator();
    if (gen.needs_shift()) {  // --context-shift: the slot is full; forget half of what is not kept
      const auto [keep, discard] = gen.shift_plan();
      engine_.shift_sequence(static_cast<int>(i), keep, discard, gen.position() - 1);
      gen.shifted(discard);
      std::vector<int32_t>& c = cached_[i];
      c.erase(c.begin() + std::min<int64_t>(keep, static_cast<int64_t>(c.size())),
              c.begin() + std::min<int64_t>(keep + discard, static_cast<int64_t>(c.size())));
      counters_.context_shifts.fetch_add(1);
    }
    const auto pos = static_cast<int32_t>(gen.position() - 1);
    batch_.push_back({s.next_token, pos, static_cast<int32_t>(i), true});
    s.logits_row = rows++;
    ++decode_tokens;
  }
  // Then prompt chunks, as much as the batch holds; the last prompt token asks for logits.
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.job || s.prefilled >= s.job->prompt().size()) continue;
    const std::vector<int32_t>& prompt = s.job->prompt();
    const auto room = static_cast<size_t>(opt_.batch) - batch_.size();
    const size_t take = std::min(room, prompt.size() - s.prefilled);
    for (size_t k = 0; k < take; ++k) {
      const size_t p = s.prefilled + k;
      const bool last = p + 1 == prompt.size();
      batch_.push_back({prompt[p], static_cast<int32_t>(p), static_cast<int32_t>(i), last});
      if (last) s.logits_row = rows++;
    }
    s.prefilled += take;
    prompt_tokens += static_cast<int64_t>(take);
    if (batch_.size() == static_cast<size_t>(opt_.batch)) break;
  }
  if (batch_.empty()) return;
  const auto t0 = Clock::now();
  // The cache rows this batch writes are unknown until it succeeds: the slots' records end before them.
  for (const BatchToken& bt : batch_) {
    std::vector<int32_t>& c = cached_[static_cast<size_t>(bt.seq)];
    c.resize(std::min(c.size(), static_cast<size_t>(bt.pos)));
  }
  engine_.decode(batch_, logits_.data());
  for (const BatchToken& bt : batch_) {
    std::vector<int32_t>& c = cached_[static_cast<size_t>(bt.seq)];
    if (c.size() == static_cast<size_t>(bt.pos)) c.push_back(bt.token);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  counters_.decode_steps.fetch_add(1);
  counters_.prompt_tokens.fetch_add(static_cast<uint64_t>(prompt_tokens));
  const double total = static_cast<double>(prompt_tokens + decode_tokens);
  add(counters_.prompt_seconds, seconds * static_cast<double>(prompt_tokens) / total);
  add(counters_.generate_seconds, seconds * static_cast<double>(decode_tokens) / total);

  for (Slot& s : slots_) {
    if (!s.job || s.logits_row < 0) continue;
    SequenceGenerator& gen = s.job->generator();
    const size_t before = gen.tokens().size();
    std::optional<int32_t> next;
    try {
      next = gen.step(logits_.data() + static_cast<int64_t>(s.logits_row) * vocab_, vocab_);
    } catch (const std::exception& e) {  // this sequence's sampling failed (e.g. its grammar): only it ends
      s.job->fail(500, std::string("generation failed: ") + e.what());
      counters_.jobs_failed.fetch_add(1);
      release(s);
      continue;
    }
    if (!s.first_token_seen) {
      s.first_token_seen = true;
      add(counters_.first_token_seconds, std::chrono::duration<double>(Clock::now() - s.job->submitted()).count());
      counters_.first_token_count.fetch_add(1);
    }
    counters_.generated_tokens.fetch_add(gen.tokens().size() - before);
    s.job->publish_step();
    if (gen.finished()) {
      counters_.jobs_finished.fetch_add(1);
      release(s);
    } else {
      s.next_token = *next;
    }
  }
}

}  // namespace bitnet::server
