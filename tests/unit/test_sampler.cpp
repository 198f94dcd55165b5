#include <bitnet/error.h>
#include <bitnet/sampler.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace bitnet {
namespace {

TEST(Sampler, GreedyAndTopOneTakeTheArgmax) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  SamplingParams greedy;
  greedy.temperature = 0;
  EXPECT_EQ(SamplerChain(greedy).sample(logits.data(), 4), 1);
  SamplingParams top1;
  top1.top_k = 1;
  EXPECT_EQ(SamplerChain(top1).sample(logits.data(), 4), 1);
}

TEST(Sampler, SeededRunsRepeatAndFollowTheDistribution) {
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f), -30.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  SamplerChain a(p), b(p);
  std::map<int32_t, int> counts;
  for (int i = 0; i < 6000; ++i) {
    const int32_t x = a.sample(logits.data(), 4);
    ASSERT_EQ(x, b.sample(logits.data(), 4));
    ++counts[x];
  }
  EXPECT_NEAR(counts[0] / 6000.0, 1.0 / 6, 0.02);
  EXPECT_NEAR(counts[1] / 6000.0, 2.0 / 6, 0.02);
  EXPECT_NEAR(counts[2] / 6000.0, 3.0 / 6, 0.02);
  a.reset();
  SamplerChain fresh(p);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.sample(logits.data(), 4), fresh.sample(logits.data(), 4));
}

TEST(Sampler, TopPMinPAndPenaltiesNarrowTheChoice) {
  // probs ~ 0.6, 0.3, 0.1: top-p 0.5 keeps only the first; min-p 0.6 too (0.3 < 0.6 * 0.6).
  const std::vector<float> logits = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.5f;
  p.min_p = 0.0f;
  SamplerChain top_p(p);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(top_p.sample(logits.data(), 3), 0);
  p.top_p = 1.0f;
  p.min_p = 0.6f;
  SamplerChain min_p(p);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(min_p.sample(logits.data(), 3), 0);
  // A strong repetition penalty moves greedy decoding off the repeated token.
  SamplingParams g;
  g.temperature = 0;
  g.repeat_penalty = 10.0f;
  SamplerChain pen(g);
  const std::vector<float> l2 = {1.0f, 0.5f};
  EXPECT_EQ(pen.sample(l2.data(), 2), 0);
  EXPECT_EQ(pen.sample(l2.data(), 2), 1);  // 1.0 / 10 < 0.5
}

TEST(Sampler, RejectsBadParameters) {
  SamplingParams p;
  p.temperature = std::nanf("");
  EXPECT_THROW(SamplerChain{p}, Error);
  p = {};
  p.top_p = 0.0f;
  EXPECT_THROW(SamplerChain{p}, Error);
  p = {};
  p.repeat_penalty = -1.0f;
  EXPECT_THROW(SamplerChain{p}, Error);
}

}  // namespace
}  // namespace bitnet

namespace bitnet {
namespace {

// A padded vocabulary's ids without a token are never candidates, greedy or sampled.
TEST(SamplerChain, ExcludedIdsAreNeverPicked) {
  std::vector<float> logits = {0.0f, 5.0f, 1.0f, 9.0f, 2.0f, 8.0f};
  const std::vector<int32_t> excluded = {3, 5};
  SamplerChain greedy({.temperature = 0.0f});
  EXPECT_EQ(greedy.sample(logits.data(), 6, excluded), 1);
  SamplerChain sampled({.temperature = 5.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 7});
  for (int i = 0; i < 500; ++i) {
    const int32_t id = sampled.sample(logits.data(), 6, excluded);
    EXPECT_TRUE(id != 3 && id != 5) << id;
  }
  EXPECT_THROW(greedy.sample(logits.data(), 2, std::vector<int32_t>{0, 1}), Error);
}

}  // namespace
}  // namespace bitnet
