// The server's continuous-batching scheduler on a random model with GPT-2's vocabulary: jobs decoded together
// (more jobs than slots, prompts of different lengths, prefill in chunks) give exactly the tokens generate()
// gives for each alone; the queue is bounded; cancelled jobs free their slots; shutdown fails what is left.
#include <bitnet/generate.h>
#include <bitnet/gguf.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "gpt2_model_fixture.h"

#include "server/scheduler.h"

namespace bitnet::server {
namespace {

class SchedulerTest : public test::Gpt2TinyModelTest<7> {
 protected:
  static SequenceOptions sampled(int n, uint64_t seed) {
    SequenceOptions o;
    o.max_tokens = n;
    o.sampling.temperature = 1.0f;
    o.sampling.seed = seed;
    return o;
  }
  // Greedy until a long context is full (seconds): jobs that are still running when the test acts on them.
  static constexpr int64_t kLong = 4096;
  static SequenceOptions endless() {
    SequenceOptions o;
    o.max_tokens = -1;
    o.sampling.temperature = 0;
    return o;
  }
  static std::shared_ptr<Job> job(const std::string& prompt, const SequenceOptions& o, int64_t ctx) {
    std::vector<int32_t> ids = tokenizer_->encode(prompt, false, true);
    const auto n = static_cast<int64_t>(ids.size());
    return std::make_shared<Job>(std::move(ids), SequenceGenerator(*tokenizer_, o, n, ctx));
  }
  // Waits for the end; returns the text.
  static std::string drain(Job& j, JobUpdate& last) {
    std::string text;
    do {
      last = j.wait(std::chrono::milliseconds(1000));
      text += last.text;
    } while (!last.done);
    return text;
  }
};

TEST_F(SchedulerTest, BatchedJobsGiveWhatEachGivesAlone) {
  const std::vector<std::string> prompts = {"Hello world", "The quick brown fox jumps over the lazy dog and then",
                                            "A", "Once upon a time, in a land far away, there lived", "1 2 3 4 5"};
  // Two slots for five jobs (three wait), a batch of 8 so long prompts prefill in chunks beside decodes.
  Scheduler s(*model_, *tokenizer_, {.slots = 2, .context = 64, .batch = 8, .max_queue = 8, .kv_cache = {}});
  std::vector<std::shared_ptr<Job>> jobs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    jobs.push_back(job(prompts[i], sampled(10 + static_cast<int>(i), 100 + i), 64));
    ASSERT_EQ(s.submit(jobs.back()), Scheduler::Admission::accepted);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    JobUpdate last;
    const std::string text = drain(*jobs[i], last);
    Engine alone(*model_, 64);
    GenerateOptions g;
    g.max_tokens = 10 + static_cast<int>(i);
    g.sampling = sampled(0, 100 + i).sampling;
    g.add_bos = false;
    const GenerateResult want = generate(alone, *tokenizer_, prompts[i], g);
    EXPECT_EQ(text, want.text) << prompts[i];
    EXPECT_EQ(last.finish_reason, want.finish_reason);
    EXPECT_EQ(last.completion_tokens, static_cast<int>(want.tokens.size()));
    EXPECT_TRUE(last.error.empty());
  }
  EXPECT_TRUE(s.wait_idle(std::chrono::milliseconds(1000)));
  EXPECT_EQ(s.counters().busy_slots.load(), 0);
  EXPECT_EQ(s.counters().queued.load(), 0);
  EXPECT_EQ(s.counters().jobs_finished.load(), prompts.size());
}

TEST_F(SchedulerTest, QueueIsBoundedAndCancelledJobsFreeTheirSlots) {
  Scheduler s(*model_, *tokenizer_, {.slots = 1, .context = kLong, .batch = 16, .max_queue = 1, .kv_cache = {}});
  auto running = job("Hello", endless(), kLong), waiting = job("Hi", endless(), kLong), refused = job("Hey", endless(), kLong);
  ASSERT_EQ(s.submit(running), Scheduler::Admission::accepted);
  // Let it take the slot, then one more may wait and a third is refused.
  while (s.counters().busy_slots.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(s.submit(waiting), Scheduler::Admission::accepted);
  EXPECT_EQ(s.submit(refused), Scheduler::Admission::queue_full);
  running->cancel();
  JobUpdate last;
  drain(*running, last);
  EXPECT_EQ(last.error_status, 503);
  EXPECT_NE(last.error.find("cancelled"), std::string::npos);
  // The waiting job got the slot; cancel it while it runs too.
  while (s.counters().queued.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  waiting->cancel();
  drain(*waiting, last);
  EXPECT_TRUE(s.wait_idle(std::chrono::milliseconds(2000)));
  EXPECT_EQ(s.counters().jobs_cancelled.load(), 2u);
  EXPECT_EQ(s.counters().busy_slots.load(), 0);
}

TEST_F(SchedulerTest, CloseRefusesAndFailAllTellsWhy) {
  Scheduler s(*model_, *tokenizer_, {.slots = 1, .context = kLong, .batch = 16, .max_queue = 4, .kv_cache = {}});
  auto a = job("Hello", endless(), kLong), b = job("Hi", endless(), kLong);
  ASSERT_EQ(s.submit(a), Scheduler::Admission::accepted);
  ASSERT_EQ(s.submit(b), Scheduler::Admission::accepted);
  s.close();
  EXPECT_EQ(s.submit(job("x", sampled(4, 3), kLong)), Scheduler::Admission::closed);
  s.fail_all("the server is shutting down");
  for (auto* j : {a.get(), b.get()}) {
    JobUpdate last;
    drain(*j, last);
    EXPECT_EQ(last.error, "the server is shutting down");
  }
  EXPECT_EQ(s.counters().busy_slots.load(), 0);
}

}  // namespace
}  // namespace bitnet::server
