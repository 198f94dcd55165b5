// Chat and text completions over the scheduler (see generation_handler.h).
#include "server/generation_handler.h"

#include <bitnet/error.h>
#include <fmt/format.h>

#include <chrono>
#include <random>

#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/peer_watch.h"

namespace bitnet::server {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);  // how often a waiting handler checks its client

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

std::vector<int32_t> prompt_tokens(const ServerState& st, const GenerationRequest& g) {
  const Tokenizer& tok = *st.tokenizer;
  std::vector<int32_t> ids;
  if (g.chat) {
    ids = tok.encode(st.render_chat(g.messages, &g.tools), /*add_bos=*/false, /*parse_special=*/true);  // the template writes BOS
  } else if (g.prompt_is_ids) {
    ids = g.prompt_ids;
  } else {
    ids = tok.encode(g.prompt, tok.add_bos_default(), /*parse_special=*/true);
  }
  const int64_t ctx = st.scheduler->options().context;
  if (ids.empty()) throw bad_request("the prompt is empty");
  if (static_cast<int64_t>(ids.size()) >= ctx)
    throw bad_request(fmt::format("the prompt has {} tokens but the context holds {} (one more is needed to answer); "
                                  "shorten it or start the server with a larger -c",
                                  ids.size(), ctx));
  return ids;
}

std::string sse(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

// The vocabulary's fill-in-the-middle tokens, in the spellings code models use (StarCoder / Qwen / DeepSeek
// style <|fim_prefix|>, <fim_prefix>, CodeLlama's <PRE>); none: -1.
struct FimTokens {
  int32_t prefix = -1, suffix = -1, middle = -1;
};
FimTokens fim_tokens(const Tokenizer& tok) {
  static const char* kSpellings[][3] = {{"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},
                                        {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"},
                                        {"<|fim▁begin|>", "<|fim▁hole|>", "<|fim▁end|>"},
                                        {"<PRE>", "<SUF>", "<MID>"},
                                        {"▁<PRE>", "▁<SUF>", "▁<MID>"}};
  for (const auto& s : kSpellings) {
    const auto p = tok.find_token(s[0]), q = tok.find_token(s[1]), m = tok.find_token(s[2]);
    if (p && q && m) return {*p, *q, *m};
  }
  return {};
}

// POST /infill (llama-server): input_prefix and input_suffix around the hole, an optional prompt after the
// middle token; becomes a completion request whose prompt is the token ids [BOS] PRE prefix SUF suffix MID prompt.
ordered_json infill_body(const Tokenizer& tok, ordered_json body) {
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  const FimTokens fim = fim_tokens(tok);
  if (fim.prefix < 0)
    throw ApiError(501, "not_supported_error", "this model's vocabulary has no fill-in-the-middle tokens "
                                               "(<|fim_prefix|>, <fim_prefix>, <PRE> ...): /infill needs a code model");
  auto text = [&](const char* name, bool required) -> std::string {
    const auto it = body.find(name);
    if (it == body.end() || it->is_null()) {
      if (required) throw bad_request(fmt::format("'{}' is required", name));
      return "";
    }
    if (!it->is_string()) throw bad_request(fmt::format("'{}' must be a string", name));
    return it->get<std::string>();
  };
  const std::string prefix = text("input_prefix", true), suffix = text("input_suffix", true), after = text("prompt", false);
  if (const auto extra = body.find("input_extra"); extra != body.end() && !extra->is_null() && !(extra->is_array() && extra->empty()))
    throw bad_request("'input_extra' (extra context files) is not supported");
  std::vector<int32_t> ids;
  if (tok.bos_id() >= 0 && tok.add_bos_default()) ids.push_back(tok.bos_id());
  auto add = [&](int32_t special, const std::string& s) {
    ids.push_back(special);
    const auto t = tok.encode(s, false, false);
    ids.insert(ids.end(), t.begin(), t.end());
  };
  add(fim.prefix, prefix);
  add(fim.suffix, suffix);
  add(fim.middle, after);
  for (const char* k : {"input_prefix", "input_suffix", "input_extra"}) body.erase(k);
  body["prompt"] = ids;
  return body;
}

// The answer in one body; the handler waits for the end, checking that its client is still there.
void answer_whole(ServerState& st, Job& job, PeerWatch& watch, const GenerationRequest& g, const ResponseIds& ids,
                  int prompt_count, HttpResponse& res) {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  JobUpdate u;
  while (true) {
    u = job.wait(kPoll);
    text += u.text;
    for (TokenLogprob& lp : u.logprobs) logprobs.push_back(std::move(lp));
    if (u.done) break;
    if (watch.gone()) {
      job.cancel();
      res.status = 499;  // nginx's "client closed request": nobody reads this answer
      return;
    }
  }
  if (!u.error.empty()) throw ApiError(u.error_status, u.error_status == 500 ? "server_error" : "unavailable_error", u.error);
  if (g.tools.active())
    if (const auto calls = parse_tool_calls(text, g.tools)) {
      res.set_content(dump_json(tool_calls_response(ids, tool_calls_json(*calls), {prompt_count, u.completion_tokens, u.cached_tokens})), "application/json");
      return;
    }
  const json lp = g.logprobs ? logprobs_json(g.chat, *st.tokenizer, logprobs, 0) : json(nullptr);
  const Usage usage{prompt_count, u.completion_tokens, u.cached_tokens};
  const json body = ids.native ? native_response(ids, utf8_sanitize(text), u.finish_reason, u.stop_word, lp, usage)
                               : completion_response(ids, utf8_sanitize(text), u.finish_reason, lp, usage);
  res.set_content(dump_json(body), "application/json");
}

// The answer as Server-Sent Events: one chunk per batch of released text, then the finish reason, the usage
// when asked, and [DONE]. Runs on a handler thread once the transport has sent the head.
bool stream_events(ServerState& st, Job& job, PeerWatch& watch, const GenerationRequest& g, const ResponseIds& ids,
                   int prompt_count, ResponseStream& sink) {
  auto send = [&](const std::string& event) {
    if (sink.write(event)) return true;
    job.cancel();  // the client is gone
    return false;
  };
  if (g.chat && !send(sse(completion_chunk(ids, "", "", nullptr, /*first=*/true)))) return false;
  size_t text_offset = 0;
  // With tools in use, text that may still turn out to be a call is held back until it is decided.
  bool holding = g.tools.active();
  std::string held;
  std::vector<TokenLogprob> held_logprobs;
  auto emit = [&](const std::string& text, const std::vector<TokenLogprob>& lps) {
    if (text.empty() && lps.empty()) return true;
    const json lp = g.logprobs ? logprobs_json(g.chat, *st.tokenizer, lps, text_offset) : json(nullptr);
    text_offset += text.size();
    return send(sse(completion_chunk(ids, utf8_sanitize(text), "", lp, false)));
  };
  while (true) {
    JobUpdate u = job.wait(kPoll);
    if (holding) {
      held += u.text;
      held_logprobs.insert(held_logprobs.end(), u.logprobs.begin(), u.logprobs.end());
      if (!may_become_tool_call(held)) {
        holding = false;
        if (!emit(held, held_logprobs)) return false;
      }
    } else if (!emit(u.text, u.logprobs)) {
      return false;
    }
    if (u.done) {
      if (!u.error.empty()) {  // the status line went out already: the error travels as an event
        const bool sent = send(sse(error_body(u.error_status, u.error_status == 500 ? "server_error" : "unavailable_error", u.error)));
        if (ids.native) return sent;  // llama-server's native stream has no [DONE]
      } else {
        std::string finish = u.finish_reason;
        if (holding) {
          if (const auto calls = parse_tool_calls(held, g.tools)) {
            if (!send(sse(tool_calls_chunk(ids, tool_calls_json(*calls))))) return false;
            finish = "tool_calls";
          } else if (!emit(held, held_logprobs)) {
            return false;
          }
        }
        const Usage usage{prompt_count, u.completion_tokens, u.cached_tokens};
        if (ids.native) return send(sse(native_response(ids, "", finish, u.stop_word, nullptr, usage)));  // no [DONE]
        if (!send(sse(completion_chunk(ids, "", finish, nullptr, false)))) return false;
        if (g.include_usage && !send(sse(usage_chunk(ids, usage)))) return false;
      }
      return send("data: [DONE]\n\n");
    }
    if (watch.gone()) {
      job.cancel();
      return false;
    }
  }
}

}  // namespace

void handle_generation(ServerState& st, HttpCounters& http, const HttpRequest& req, HttpResponse& res,
                       GenerationRoute route) {
  const Tokenizer& tok = *st.tokenizer;
  Scheduler& scheduler = *st.scheduler;
  const bool chat = route == GenerationRoute::chat;
  ordered_json body = parse_json_body(req.body);
  if (route == GenerationRoute::infill) body = infill_body(tok, std::move(body));
  auto g = std::make_shared<GenerationRequest>(
      parse_generation_request(body, chat, {st.options.max_tokens, tok.vocab_size(), st.options.sampling, st.options.seed}));
  g->options.n_keep = st.options.n_keep;
  std::vector<int32_t> ids = prompt_tokens(st, *g);
  const auto prompt_count = static_cast<int>(ids.size());
  const int64_t n_ctx = scheduler.options().context;
  auto job = std::make_shared<Job>(std::move(ids), SequenceGenerator(tok, g->options, prompt_count, n_ctx), g->cache_prompt);
  switch (scheduler.submit(job)) {
    case Scheduler::Admission::accepted:
      break;
    case Scheduler::Admission::queue_full:
      http.rejected_busy.fetch_add(1);
      res.set_header("Retry-After", "1");
      throw ApiError(503, "unavailable_error",
                     fmt::format("the server is busy: all {} slots are in use and {} requests are waiting; retry later",
                                 scheduler.options().slots, scheduler.options().max_queue));
    case Scheduler::Admission::closed:
      throw ApiError(503, "unavailable_error", "the server is shutting down");
  }
  // A keep-alive client that shuts its side has left; one that said this is its last request may half-close.
  auto watch = std::make_shared<PeerWatch>(req.socket_fd, req.connection_closed, req.keep_alive);
  const ResponseIds rid{chat, route == GenerationRoute::native || route == GenerationRoute::infill,
                        random_id(chat ? "chatcmpl-" : "cmpl-"), st.model_id,
                        std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count()};
  if (!g->stream) {
    answer_whole(st, *job, *watch, *g, rid, prompt_count, res);
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_header("Content-Type", "text/event-stream");
  res.stream = [&st, job, watch, g, rid, prompt_count](ResponseStream& sink) {
    return stream_events(st, *job, *watch, *g, rid, prompt_count, sink);
  };
  res.on_stream_end = [job](bool success) {
    if (!success) job->cancel();  // the stream broke off (or never started): free the slot
  };
}

}  // namespace bitnet::server
