// The samplers of the chain.
#include <bitnet/error.h>
#include <bitnet/sampler.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace bitnet {

void Candidates::reset(const float* all_logits, int64_t vocab) {
  ids.resize(static_cast<size_t>(vocab));
  std::iota(ids.begin(), ids.end(), 0);
  logits.assign(all_logits, all_logits + vocab);
  selected = -1;
}

void SamplingParams::validate() const {
  auto finite = [](float v, const char* name) {
    BITNET_CHECK(std::isfinite(v), "[sampling] {} must be a finite number, got {}", name, v);
  };
  finite(temperature, "temperature");
  finite(top_p, "top_p");
  finite(min_p, "min_p");
  finite(repeat_penalty, "repeat_penalty");
  finite(frequency_penalty, "frequency_penalty");
  finite(presence_penalty, "presence_penalty");
  BITNET_CHECK(temperature >= 0, "[sampling] temperature must be >= 0, got {}", temperature);
  BITNET_CHECK(top_k >= 0, "[sampling] top_k must be >= 0 (0: off), got {}", top_k);
  BITNET_CHECK(top_p > 0 && top_p <= 1, "[sampling] top_p must be in (0, 1], got {}", top_p);
  BITNET_CHECK(min_p >= 0 && min_p <= 1, "[sampling] min_p must be in [0, 1], got {}", min_p);
  BITNET_CHECK(repeat_penalty > 0, "[sampling] repeat_penalty must be > 0, got {}", repeat_penalty);
  BITNET_CHECK(repeat_last_n >= 0, "[sampling] repeat_last_n must be >= 0, got {}", repeat_last_n);
  for (const auto& [id, bias] : logit_bias) {
    BITNET_CHECK(id >= 0, "[sampling] logit_bias: token id {} is negative", id);
    BITNET_CHECK(std::isfinite(bias) || bias == -std::numeric_limits<float>::infinity(),
                 "[sampling] logit_bias of token {} must be a finite number or -infinity (a ban), got {}", id, bias);
  }
}

namespace {

// Sorts candidates by logit, descending (stable on id for equal logits, so results do not depend on the sort).
void sort_desc(Candidates& c, size_t keep) {
  std::vector<size_t> order(c.size());
  std::iota(order.begin(), order.end(), 0);
  keep = std::min(keep, order.size());
  auto better = [&](size_t a, size_t b) {
    return c.logits[a] > c.logits[b] || (c.logits[a] == c.logits[b] && c.ids[a] < c.ids[b]);
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(), better);
  std::vector<int32_t> ids(keep);
  std::vector<float> logits(keep);
  for (size_t i = 0; i < keep; ++i) {
    ids[i] = c.ids[order[i]];
    logits[i] = c.logits[order[i]];
  }
  c.ids = std::move(ids);
  c.logits = std::move(logits);
}

std::vector<double> softmax(const std::vector<float>& logits) {
  std::vector<double> p(logits.size());
  const double m = logits.empty() ? 0.0 : *std::max_element(logits.begin(), logits.end());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) total += (p[i] = std::exp(static_cast<double>(logits[i]) - m));
  for (double& v : p) v /= total;
  return p;
}

class Penalties : public Sampler {
 public:
  Penalties(int32_t last_n, float repeat, float frequency, float presence)
      : last_n_(last_n), repeat_(repeat), frequency_(frequency), presence_(presence) {}
  std::string_view name() const override { return "penalties"; }
  void apply(Candidates& c) override {
    if (recent_.empty() || (repeat_ == 1.0f && frequency_ == 0.0f && presence_ == 0.0f)) return;
    for (size_t i = 0; i < c.size(); ++i) {
      const auto it = counts_.find(c.ids[i]);
      if (it == counts_.end()) continue;
      float& l = c.logits[i];
      l = l > 0 ? l / repeat_ : l * repeat_;
      l -= static_cast<float>(it->second) * frequency_ + presence_;
    }
  }
  void accept(int32_t token) override {
    if (last_n_ == 0) return;
    recent_.push_back(token);
    ++counts_[token];
    if (static_cast<int32_t>(recent_.size()) > last_n_) {
      if (--counts_[recent_.front()] == 0) counts_.erase(recent_.front());
      recent_.pop_front();
    }
  }
  void reset() override {
    recent_.clear();
    counts_.clear();
  }

 private:
  int32_t last_n_;
  float repeat_, frequency_, presence_;
  std::deque<int32_t> recent_;
  std::unordered_map<int32_t, int> counts_;
};

class TopK : public Sampler {
 public:
  explicit TopK(int32_t k) : k_(k) {}
  std::string_view name() const override { return "top-k"; }
  void apply(Candidates& c) override { sort_desc(c, k_ > 0 ? static_cast<size_t>(k_) : c.size()); }

 private:
  int32_t k_;
};

class TopP : public Sampler {
 public:
  explicit TopP(float p) : p_(p) {}
  std::string_view name() const override { return "top-p"; }
  void apply(Candidates& c) override {  // candidates arrive sorted (top-k ran first)
    if (p_ >= 1.0f) return;
    const auto probs = softmax(c.logits);
    double cum = 0;
    size_t keep = c.size();
    for (size_t i = 0; i < probs.size(); ++i) {
      cum += probs[i];
      if (cum >= p_) {
        keep = i + 1;
        break;
      }
    }
    c.ids.resize(keep);
    c.logits.resize(keep);
  }

 private:
  float p_;
};

class MinP : public Sampler {
 public:
  explicit MinP(float p) : p_(p) {}
  std::string_view name() const override { return "min-p"; }
  void apply(Candidates& c) override {  // sorted: the first is the most likely
    if (p_ <= 0.0f || c.size() == 0) return;
    const float threshold = c.logits[0] + std::log(p_);
    size_t keep = 1;
    while (keep < c.size() && c.logits[keep] >= threshold) ++keep;
    c.ids.resize(keep);
    c.logits.resize(keep);
  }

 private:
  float p_;
};

class Temperature : public Sampler {
 public:
  explicit Temperature(float t) : t_(t) {}
  std::string_view name() const override { return "temperature"; }
  void apply(Candidates& c) override {
    for (float& l : c.logits) l /= t_;
  }

 private:
  float t_;
};

class Pick : public Sampler {
 public:
  explicit Pick(uint64_t seed) : seed_(seed), rng_(seed) {}
  std::string_view name() const override { return "dist"; }
  void apply(Candidates& c) override {
    const auto probs = softmax(c.logits);
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    double cum = 0;
    c.selected = c.ids.back();
    for (size_t i = 0; i < probs.size(); ++i) {
      cum += probs[i];
      if (u < cum) {
        c.selected = c.ids[i];
        break;
      }
    }
  }
  void reset() override { rng_.seed(seed_); }

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
};

class Greedy : public Sampler {
 public:
  std::string_view name() const override { return "greedy"; }
  void apply(Candidates& c) override {
    size_t best = 0;
    for (size_t i = 1; i < c.size(); ++i)
      if (c.logits[i] > c.logits[best]) best = i;
    c.selected = c.ids[best];
  }
};

}  // namespace

SamplerChain::SamplerChain(const SamplingParams& p) : bias_(p.logit_bias) {
  p.validate();
  chain_.push_back(std::make_unique<Penalties>(p.repeat_last_n, p.repeat_penalty, p.frequency_penalty, p.presence_penalty));
  if (p.temperature <= 0.0f) {
    chain_.push_back(std::make_unique<Greedy>());
    return;
  }
  chain_.push_back(std::make_unique<TopK>(p.top_k));
  chain_.push_back(std::make_unique<TopP>(p.top_p));
  chain_.push_back(std::make_unique<MinP>(p.min_p));
  chain_.push_back(std::make_unique<Temperature>(p.temperature));
  chain_.push_back(std::make_unique<Pick>(p.seed));
}

void SamplerChain::apply(Candidates& c) {
  for (auto& s : chain_) s->apply(c);
}

void SamplerChain::accept(int32_t token) {
  for (auto& s : chain_) s->accept(token);
}

void SamplerChain::reset() {
  for (auto& s : chain_) s->reset();
}

int32_t SamplerChain::sample(const float* logits, int64_t vocab, std::span<const int32_t> excluded) {
  const int32_t id = pick(logits, vocab, excluded);
  accept(id);
  return id;
}

int32_t SamplerChain::pick(const float* logits, int64_t vocab, std::span<const int32_t> excluded,
                           std::span<const uint8_t> allowed) {
  scratch_.reset(logits, vocab);
  for (const auto& [id, bias] : bias_) {  // ids equal positions until candidates are removed
    BITNET_CHECK(id < vocab, "[sampling] logit_bias: token id {} is outside the vocabulary (0..{})", id, vocab - 1);
    scratch_.logits[static_cast<size_t>(id)] += bias;
  }
  if (!excluded.empty() || !allowed.empty() || !bias_.empty()) {
    size_t kept = 0, e = 0;
    for (size_t i = 0; i < scratch_.ids.size(); ++i) {
      const int32_t id = scratch_.ids[i];
      while (e < excluded.size() && excluded[e] < id) ++e;
      if (e < excluded.size() && excluded[e] == id) continue;
      if (!allowed.empty() && (static_cast<size_t>(id) >= allowed.size() || !allowed[static_cast<size_t>(id)])) continue;
      if (scratch_.logits[i] == -std::numeric_limits<float>::infinity()) continue;  // banned by logit_bias
      scratch_.ids[kept] = id;
      scratch_.logits[kept++] = scratch_.logits[i];
    }
    BITNET_CHECK(kept > 0, "[sampling] no token of the vocabulary remains a candidate (all excluded, banned or "
                           "refused by the grammar)");
    scratch_.ids.resize(kept);
    scratch_.logits.resize(kept);
  }
  apply(scratch_);
  return scratch_.selected;
}

}  // namespace bitnet
