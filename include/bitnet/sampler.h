#pragma once
// Token sampling as a chain of small samplers (llama.cpp's design): each one narrows or reshapes the candidate
// list; the last one picks. Seeded, so a run is reproducible.
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace bitnet {

struct Candidates {
  std::vector<int32_t> ids;
  std::vector<float> logits;
  int32_t selected = -1;  // set by the picking sampler
  void reset(const float* all_logits, int64_t vocab);
  size_t size() const { return ids.size(); }
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::string_view name() const = 0;
  virtual void apply(Candidates& c) = 0;
  virtual void accept(int32_t /*token*/) {}  // a token was chosen (for penalties)
  virtual void reset() {}
};

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off (llama.cpp: positive logits divided, negative multiplied)
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t repeat_last_n = 64;
  float typical_p = 1.0f;       // locally typical sampling (Meister et al.); >= 1: off
  int32_t mirostat = 0;         // 1 or 2: Mirostat v1 / v2 picks instead of top-k/top-p/min-p (llama.cpp's)
  float mirostat_tau = 5.0f;    // target surprise (bits)
  float mirostat_eta = 0.1f;    // learning rate of mu
  uint64_t seed = 0xB17E7;
  // Added to a token's logit before any sampler runs (OpenAI's logit_bias); -infinity bans the token.
  std::vector<std::pair<int32_t, float>> logit_bias{};
  void validate() const;        // throws naming the out-of-range value (NaN included)
};

// penalties -> top-k -> typical -> top-p -> min-p -> temperature -> random pick (or greedy when temperature <= 0);
// with mirostat: penalties -> temperature -> mirostat's pick (llama.cpp's chains).
class SamplerChain : public Sampler {
 public:
  explicit SamplerChain(const SamplingParams& params);
  std::string_view name() const override { return "chain"; }
  void apply(Candidates& c) override;
  void accept(int32_t token) override;
  void reset() override;
  // Picks the next token from raw logits and accepts it. `excluded` (sorted ascending, may be empty): ids that are
  // never candidates (a padded vocabulary's ids without a token).
  int32_t sample(const float* logits, int64_t vocab, std::span<const int32_t> excluded = {});
  // The same without accepting, so that a constraint can refuse the pick and ask again. `allowed` (empty, or one
  // flag per id): only ids flagged 1 are candidates. Throws when no candidate remains.
  int32_t pick(const float* logits, int64_t vocab, std::span<const int32_t> excluded = {},
               std::span<const uint8_t> allowed = {});

 private:
  std::vector<std::unique_ptr<Sampler>> chain_;
  std::vector<std::pair<int32_t, float>> bias_;
  Candidates scratch_;
};

}  // namespace bitnet
