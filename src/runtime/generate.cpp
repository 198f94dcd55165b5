// The single-sequence generation loop: encode, prefill, then one SequenceGenerator step per decoded token.
#include <bitnet/generate.h>
#include <bitnet/sequence_generator.h>

#include <algorithm>
#include <chrono>

namespace bitnet {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerateResult generate(Engine& engine, const Tokenizer& tok, std::string_view prompt, const GenerateOptions& o,
                        const std::function<bool(std::string_view)>& on_text) {
  for (const std::string& s : o.stop) BITNET_CHECK(!s.empty(), "[generate] stop strings must not be empty");
  GenerateResult r;
  const std::vector<int32_t> ids = tok.encode(prompt, o.add_bos && tok.add_bos_default(), o.parse_special);
  BITNET_CHECK(!ids.empty(), "[generate] the prompt encodes to no tokens");
  BITNET_CHECK(static_cast<int64_t>(ids.size()) < engine.context(),
               "[generate] the prompt has {} tokens but the context holds {}", ids.size(), engine.context());
  r.prompt_tokens = static_cast<int>(ids.size());
  SequenceGenerator seq(tok,
                        {.max_tokens = o.max_tokens, .sampling = o.sampling, .stop = o.stop, .top_logprobs = o.top_logprobs,
                         .ignore_eos = o.ignore_eos, .grammar = o.grammar, .n_keep = o.n_keep},
                        static_cast<int64_t>(ids.size()), engine.context());
  // Reuse the cached prefix; at least the last prompt token is evaluated, for its logits.
  size_t reuse = 0;
  if (o.cached != nullptr) {
    const size_t n = std::min(o.cached->size(), ids.size() - 1);
    while (reuse < n && (*o.cached)[reuse] == ids[reuse]) ++reuse;
    o.cached->assign(ids.begin(), ids.end());
  }
  auto t0 = std::chrono::steady_clock::now();
  const float* logits = engine.eval(o.seq, std::span<const int32_t>(ids).subspan(reuse), static_cast<int32_t>(reuse));
  r.prompt_seconds = seconds_since(t0);
  r.reused_tokens = static_cast<int>(reuse);
  t0 = std::chrono::steady_clock::now();

  const int64_t vocab = engine.model().config().vocab;
  while (!seq.finished()) {
    const std::optional<int32_t> next = seq.step(logits, vocab);
    if (const std::string text = seq.take_text(); !text.empty()) {
      r.text.append(text);
      if (on_text && !on_text(text)) seq.stop();
    }
    if (!next || seq.finished()) break;
    if (seq.needs_shift()) {  // the context is full: forget half of what is not kept, as llama.cpp does
      const auto [keep, discard] = seq.shift_plan();
      engine.shift_sequence(o.seq, keep, discard, seq.position() - 1);
      seq.shifted(discard);
      if (o.cached != nullptr) o.cached->erase(o.cached->begin() + keep, o.cached->begin() + keep + discard);
      ++r.context_shifts;
    }
    logits = engine.eval(o.seq, std::span<const int32_t>(&*next, 1), static_cast<int32_t>(seq.position() - 1));
    if (o.cached != nullptr) o.cached->push_back(*next);
  }
  r.tokens = seq.tokens();
  r.logprobs = seq.take_logprobs();
  r.finish_reason = seq.finish_reason();
  r.generate_seconds = seconds_since(t0);
  return r;
}

}  // namespace bitnet
