// The generation loop: prefill, sample, stop conditions, streaming text without partial characters or stop
// strings.
#include <bitnet/generate.h>

#include <chrono>

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
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

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
  SamplerChain sampler(o.sampling);
  auto t0 = std::chrono::steady_clock::now();
  const float* logits = engine.eval(o.seq, ids, 0);
  r.prompt_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();

  const int64_t vocab = engine.model().config().vocab;
  auto pos = static_cast<int32_t>(ids.size());
  std::string pending;   // decoded text not delivered yet
  bool boundary = false;
  r.finish_reason = "length";
  while (o.max_tokens < 0 || static_cast<int>(r.tokens.size()) < o.max_tokens) {
    if (pos >= engine.context()) break;
    const int32_t id = sampler.sample(logits, vocab);
    if (tok.is_eog(id)) {
      r.finish_reason = "stop";
      break;
    }
    r.tokens.push_back(id);
    tok.append_piece(pending, id, /*skip_special=*/true, boundary);
    bool stopped = false;
    for (const std::string& s : o.stop)
      if (const size_t at = pending.find(s); at != std::string::npos) {
        pending.resize(at);
        stopped = true;
      }
    const size_t ready = stopped ? pending.size()
                                 : std::min(complete_utf8_prefix(pending), pending.size() - stop_prefix_overlap(pending, o.stop));
    if (ready > 0) {
      const std::string_view piece(pending.data(), ready);
      r.text.append(piece);
      const bool go_on = !on_text || on_text(piece);
      pending.erase(0, ready);
      if (!go_on) stopped = true;
    }
    if (stopped) {
      r.finish_reason = "stop";
      pending.clear();
      break;
    }
    logits = engine.eval(o.seq, std::span<const int32_t>(&id, 1), pos++);
  }
  if (!pending.empty()) {  // the budget ran out with text held back: deliver what is left
    r.text.append(pending);
    if (on_text) on_text(pending);
  }
  r.generate_seconds = seconds_since(t0);
  return r;
}

}  // namespace bitnet
