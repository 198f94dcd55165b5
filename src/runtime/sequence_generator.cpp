// One sequence's generation state: sample, stop conditions, text released without partial characters or stop
// strings (see include/bitnet/sequence_generator.h).
#include <bitnet/error.h>
#include <bitnet/generate.h>
#include <bitnet/grammar.h>
#include <bitnet/sequence_generator.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace bitnet {

size_t complete_utf8_prefix(std::string_view s) {
  size_t i = s.size();
  for (size_t back = 0; back < 4 && i > 0; ++back, --i) {
    const auto c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back for the lead byte
    const size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    return back + 1 >= need ? s.size() : i - 1;
  }
  return s.size();  // no lead byte in reach: not UTF-8, pass it through
}

namespace {

// How many bytes at the end of `text` could be the start of a stop string (held back until decided).
size_t stop_prefix_overlap(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops)
    for (size_t len = std::min(s.size() - 1, text.size()); len > hold; --len)
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
  return hold;
}

SequenceOptions checked(SequenceOptions o) {
  for (const std::string& s : o.stop) BITNET_CHECK(!s.empty(), "[generate] stop strings must not be empty");
  o.sampling.validate();
  return o;
}

}  // namespace

SequenceGenerator::SequenceGenerator(const Tokenizer& tokenizer, SequenceOptions options, int64_t prompt_tokens,
                                     int64_t n_ctx)
    : tok_(tokenizer), opt_(checked(std::move(options))), sampler_(opt_.sampling), prompt_tokens_(prompt_tokens),
      n_ctx_(n_ctx) {
  BITNET_CHECK(prompt_tokens > 0 && prompt_tokens < n_ctx,
               "[generate] the prompt has {} tokens but the context holds {}", prompt_tokens, n_ctx);
  BITNET_CHECK(opt_.n_keep < 0 || opt_.n_keep < n_ctx - 2,
               "[generate] --keep {} leaves nothing to shift out of a context of {}", opt_.n_keep, n_ctx);
  excluded_ = tok_.unused_ids();
  if (opt_.ignore_eos) {
    excluded_.insert(excluded_.end(), tok_.eog_ids().begin(), tok_.eog_ids().end());
    std::sort(excluded_.begin(), excluded_.end());
    excluded_.erase(std::unique(excluded_.begin(), excluded_.end()), excluded_.end());
  }
  if (opt_.grammar) grammar_ = std::make_unique<GrammarMatcher>(opt_.grammar);
  if (opt_.max_tokens == 0) finish("length", true);
}

SequenceGenerator::~SequenceGenerator() = default;
SequenceGenerator::SequenceGenerator(SequenceGenerator&&) noexcept = default;

// The chain's pick, checked against the grammar: the pick is tried first (almost always allowed, and one token
// is cheap to check); only when the grammar refuses it is the whole vocabulary masked and the pick redone.
int32_t SequenceGenerator::sample(const float* logits, int64_t vocab) {
  int32_t id = sampler_.pick(logits, vocab, excluded_);
  if (grammar_ && !grammar_->allows_token(tok_, id)) {
    grammar_->allowed_tokens(tok_, allowed_);
    id = sampler_.pick(logits, vocab, excluded_, allowed_);
  }
  sampler_.accept(id);
  if (grammar_) grammar_->accept_token(tok_, id);
  return id;
}

std::optional<int32_t> SequenceGenerator::step(const float* logits, int64_t model_vocab) {
  if (finished_) return std::nullopt;
  // A vocabulary padded past the tokenizer (embedding rows without a token, or GGUF [PAD] tokens of type unused):
  // those ids are never sampled, so decoding never meets an id it cannot turn into text.
  const int64_t vocab = std::min<int64_t>(model_vocab, tok_.vocab_size());
  if (grammar_ && grammar_->must_end()) {  // the grammar's sentence is complete: nothing else may follow
    finish("stop", true);
    return std::nullopt;
  }
  const int32_t id = sample(logits, vocab);
  if (tok_.is_eog(id)) {
    finish("stop", true);
    return std::nullopt;
  }
  if (opt_.top_logprobs >= 0) record_logprobs(logits, vocab, id);
  tokens_.push_back(id);
  tok_.append_piece(pending_, id, /*skip_special=*/true, boundary_);
  for (const std::string& s : opt_.stop)
    if (const size_t at = pending_.find(s); at != std::string::npos) {
      pending_.resize(at);
      ready_.append(pending_);
      stop_word_ = s;
      finish("stop", false);
      return std::nullopt;
    }
  const size_t ready = std::min(complete_utf8_prefix(pending_), pending_.size() - stop_prefix_overlap(pending_, opt_.stop));
  ready_.append(pending_, 0, ready);
  pending_.erase(0, ready);
  const bool budget_spent = opt_.max_tokens >= 0 && static_cast<int64_t>(tokens_.size()) >= opt_.max_tokens;
  if (budget_spent || (opt_.n_keep < 0 && position() >= n_ctx_)) {  // no room for (or no need of) another token
    finish("length", true);
    return std::nullopt;
  }
  return id;
}

std::pair<int64_t, int64_t> SequenceGenerator::shift_plan() const {
  const int64_t n_past = position() - 1;
  const int64_t keep = std::min(opt_.n_keep, n_past - 2);
  return {keep, std::max<int64_t>(1, (n_past - keep) / 2)};
}

void SequenceGenerator::stop() {
  if (!finished_) finish("stop", false);
}

void SequenceGenerator::finish(const char* reason, bool flush) {
  if (flush) ready_.append(pending_);  // the sequence ended with text held back: release what is left
  pending_.clear();
  finished_ = true;
  finish_reason_ = reason;
}

std::string SequenceGenerator::take_text() {
  std::string out;
  out.swap(ready_);
  return out;
}

std::vector<TokenLogprob> SequenceGenerator::take_logprobs() {
  std::vector<TokenLogprob> out;
  out.swap(logprobs_);
  return out;
}

// Log-softmax of the raw logits: one pass for the maximum, one for the normalizer; alternatives by a partial
// sort of the ids (ties broken by id, so the list does not depend on the sort).
void SequenceGenerator::record_logprobs(const float* logits, int64_t vocab, int32_t chosen) {
  // Over the ids that can be sampled (see step()).
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(vocab));
  const std::vector<int32_t>& unused = tok_.unused_ids();
  for (int32_t i = 0, u = 0; i < vocab; ++i) {
    while (u < static_cast<int32_t>(unused.size()) && unused[static_cast<size_t>(u)] < i) ++u;
    if (u < static_cast<int32_t>(unused.size()) && unused[static_cast<size_t>(u)] == i) continue;
    ids.push_back(i);
  }
  float max = logits[ids.front()];
  for (int32_t i : ids) max = std::max(max, logits[i]);
  double sum = 0;
  for (int32_t i : ids) sum += std::exp(static_cast<double>(logits[i] - max));
  const auto log_norm = static_cast<float>(max + std::log(sum));
  TokenLogprob lp{chosen, logits[chosen] - log_norm, {}};
  const auto n = std::min(static_cast<size_t>(opt_.top_logprobs), ids.size());
  if (n > 0) {
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (size_t k = 0; k < n; ++k) lp.top.emplace_back(ids[k], logits[ids[k]] - log_norm);
  }
  logprobs_.push_back(std::move(lp));
}

}  // namespace bitnet
