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
  finite(typical_p, "typical_p");
  finite(mirostat_tau, "mirostat_tau");
  finite(mirostat_eta, "mirostat_eta");
  BITNET_CHECK(typical_p > 0 && typical_p <= 1, "[sampling] typical_p must be in (0, 1], got {}", typical_p);
  BITNET_CHECK(mirostat >= 0 && mirostat <= 2, "[sampling] mirostat must be 0 (off), 1 or 2, got {}", mirostat);
  BITNET_CHECK(mirostat_tau > 0, "[sampling] mirostat_tau must be > 0, got {}", mirostat_tau);
  BITNET_CHECK(mirostat_eta > 0 && mirostat_eta <= 1, "[sampling] mirostat_eta must be in (0, 1], got {}", mirostat_eta);
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

// How many entries, taken in the order prob(0), prob(1), ..., first reach a probability mass of p (all of them
// when rounding keeps the sum below p): top-p's and typical sampling's cut.
template <class Prob>
size_t mass_prefix(size_t n, double p, Prob prob) {
  double cum = 0;
  for (size_t i = 0; i < n; ++i)
    if ((cum += prob(i)) >= p) return i + 1;
  return n;
}

// The index a uniform draw lands on in these probabilities (the last one when rounding leaves the sum short).
size_t draw(const std::vector<double>& probs, std::mt19937_64& rng) {
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  double cum = 0;
  for (size_t i = 0; i < probs.size(); ++i)
    if (u < (cum += probs[i])) return i;
  return probs.size() - 1;
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
    const size_t keep = mass_prefix(probs.size(), p_, [&](size_t i) { return probs[i]; });
    c.ids.resize(keep);
    c.logits.resize(keep);
  }

 private:
  float p_;
};

// Locally typical sampling: keeps the tokens whose surprise is closest to the distribution's entropy, up to a
// total probability of p; the candidates are sorted by logit again afterwards, for top-p and min-p.
class Typical : public Sampler {
 public:
  explicit Typical(float p) : p_(p) {}
  std::string_view name() const override { return "typical"; }
  void apply(Candidates& c) override {
    if (p_ >= 1.0f || c.size() < 2) return;
    const auto probs = softmax(c.logits);
    double entropy = 0;
    for (const double p : probs)
      if (p > 0) entropy -= p * std::log(p);
    std::vector<size_t> order(c.size());
    std::iota(order.begin(), order.end(), 0);
    auto shift = [&](size_t i) { return probs[i] > 0 ? std::fabs(-std::log(probs[i]) - entropy) : INFINITY; };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return shift(a) < shift(b); });
    order.resize(mass_prefix(order.size(), p_, [&](size_t k) { return probs[order[k]]; }));
    std::sort(order.begin(), order.end());  // back to logit order (the candidates arrived sorted)
    size_t n = 0;
    for (const size_t i : order) {
      c.ids[n] = c.ids[i];
      c.logits[n++] = c.logits[i];
    }
    c.ids.resize(n);
    c.logits.resize(n);
  }

 private:
  float p_;
};

// Mirostat (Basu et al.), as llama.cpp implements it: a pick that keeps the surprise of the chosen tokens near
// tau by moving the threshold mu. v1 estimates the Zipf exponent from the top 100 tokens and keeps the top k it
// implies; v2 keeps the tokens whose surprise is at most mu. mu learns from each accepted token.
class Mirostat : public Sampler {
 public:
  Mirostat(int version, float tau, float eta, uint64_t seed)
      : version_(version), tau_(tau), eta_(eta), mu_(2 * tau), seed_(seed), rng_(seed) {}
  std::string_view name() const override { return version_ == 1 ? "mirostat" : "mirostat-v2"; }
  void apply(Candidates& c) override {
    sort_desc(c, c.size());
    auto probs = softmax(c.logits);
    size_t keep = probs.size();
    if (version_ == 1) {
      const size_t m = std::min<size_t>(100, probs.size());
      double sum_tb = 0, sum_t2 = 0;
      for (size_t i = 0; i + 1 < m; ++i) {
        const double t = std::log((i + 2.0) / (i + 1.0));
        const double b = std::log(probs[i] / probs[i + 1]);
        sum_tb += t * b;
        sum_t2 += t * t;
      }
      const double s_hat = sum_t2 > 0 ? sum_tb / sum_t2 : 1.0;
      const double eps = s_hat - 1;
      const double k = std::pow((eps * std::pow(2.0, mu_)) / (1 - std::pow(static_cast<double>(probs.size()), -eps)), 1 / s_hat);
      keep = std::isfinite(k) ? static_cast<size_t>(std::clamp(k, 1.0, static_cast<double>(probs.size()))) : probs.size();
    } else {
      keep = 0;
      while (keep < probs.size() && -std::log2(probs[keep]) <= mu_) ++keep;
      keep = std::max<size_t>(keep, 1);
    }
    c.ids.resize(keep);
    c.logits.resize(keep);
    probs = softmax(c.logits);
    c.selected = c.ids[draw(probs, rng_)];
    last_ids_ = c.ids;
    last_probs_ = std::move(probs);
  }
  void accept(int32_t token) override {  // mu moves by how surprising the accepted token was
    for (size_t i = 0; i < last_ids_.size(); ++i)
      if (last_ids_[i] == token) {
        mu_ -= eta_ * (-std::log2(last_probs_[i]) - tau_);
        return;
      }
  }
  void reset() override {
    mu_ = 2 * tau_;
    rng_.seed(seed_);
  }

 private:
  int version_;
  float tau_, eta_;
  double mu_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<int32_t> last_ids_;  // the last pick's candidates and their probabilities, for accept()
  std::vector<double> last_probs_;
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
  void apply(Candidates& c) override { c.selected = c.ids[draw(softmax(c.logits), rng_)]; }
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
  if (p.mirostat != 0) {
    chain_.push_back(std::make_unique<Temperature>(p.temperature));
    chain_.push_back(std::make_unique<Mirostat>(p.mirostat, p.mirostat_tau, p.mirostat_eta, p.seed));
    return;
  }
  chain_.push_back(std::make_unique<TopK>(p.top_k));
  chain_.push_back(std::make_unique<Typical>(p.typical_p));
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
