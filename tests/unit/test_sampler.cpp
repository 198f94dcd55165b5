#include <bitnet/error.h>
#include <bitnet/sampler.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

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

namespace bitnet {
namespace {

SamplingParams plain(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  return p;
}

// Locally typical: probabilities 0.4, 0.35, 0.25 have entropy 1.0805 nats; token 1's surprise (1.050) is the
// closest to it, so a tiny typical mass keeps token 1 alone, never the most likely token 0.
TEST(Sampler, TypicalKeepsTheTokensNearTheEntropy) {
  const std::vector<float> logits = {std::log(0.4f), std::log(0.35f), std::log(0.25f)};
  SamplingParams p = plain();
  p.typical_p = 1e-3f;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    p.seed = seed;
    SamplerChain chain(p);
    EXPECT_EQ(chain.sample(logits.data(), 3), 1);
  }
  p.typical_p = 0;
  EXPECT_THROW(p.validate(), Error);
}

// Mirostat v2 keeps the tokens whose surprise is at most mu (2 tau at the start): a tiny tau leaves only the most
// likely token; a large one keeps them all. mu moves with the surprise of what is accepted.
TEST(Sampler, MirostatTracksItsTargetSurprise) {
  std::vector<float> logits(64);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = -0.1f * static_cast<float>(i);
  for (int version : {1, 2}) {
    SamplingParams p = plain();
    p.mirostat = version;
    p.mirostat_tau = 0.01f;
    if (version == 2) {  // v1's k comes from a fitted Zipf exponent: not "the top token" for any tau
      SamplerChain narrow(p);
      for (int i = 0; i < 20; ++i) EXPECT_EQ(narrow.sample(logits.data(), 64), 0);
    }
    p.mirostat_tau = 20.0f;
    SamplerChain wide(p), again(p);
    std::set<int32_t> seen;
    for (int i = 0; i < 50; ++i) {
      const int32_t a = wide.sample(logits.data(), 64);
      EXPECT_EQ(a, again.sample(logits.data(), 64));  // seeded
      seen.insert(a);
    }
    EXPECT_GT(seen.size(), 10u) << "v" << version;
  }
  SamplingParams bad = plain();
  bad.mirostat = 3;
  EXPECT_THROW(bad.validate(), Error);
}

}  // namespace
}  // namespace bitnet
