// OpenAI-shaped response bodies (see openai_response.h).
#include "server/openai_response.h"

namespace bitnet::server {

using nlohmann::json;

namespace {

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

json head(const ResponseIds& ids, bool chunk) {
  return {{"id", ids.id},
          {"object", ids.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
          {"created", ids.created},
          {"model", ids.model},
          {"system_fingerprint", "bitnet"}};
}

json reason(const std::string& r) { return r.empty() ? json(nullptr) : json(r); }

json byte_list(const std::string& s) {
  json out = json::array();
  for (const char c : s) out.push_back(static_cast<unsigned char>(c));
  return out;
}

}  // namespace

json completion_response(const ResponseIds& ids, const std::string& text, const std::string& finish_reason,
                         const json& logprobs, const Usage& usage) {
  json r = head(ids, false);
  json choice = {{"index", 0}, {"finish_reason", reason(finish_reason)}, {"logprobs", logprobs}};
  if (ids.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  r["choices"] = json::array({choice});
  r["usage"] = usage_json(usage);
  return r;
}

json native_response(const ResponseIds& ids, const std::string& text, const std::string& finish_reason,
                     const std::string& stop_word, const json& probs, const Usage& usage) {
  json r = {{"content", text},
            {"stop", true},
            {"model", ids.model},
            {"tokens_predicted", usage.completion_tokens},
            {"tokens_evaluated", usage.prompt_tokens},
            {"tokens_cached", usage.cached_tokens},
            {"stop_type", finish_reason == "length" ? "limit" : stop_word.empty() ? "eos" : "word"},
            {"stopping_word", stop_word},
            {"truncated", false}};
  if (!probs.is_null()) r["completion_probabilities"] = probs;
  return r;
}

json tool_calls_response(const ResponseIds& ids, const json& tool_calls, const Usage& usage) {
  json r = head(ids, false);
  r["choices"] = json::array({{{"index", 0},
                               {"finish_reason", "tool_calls"},
                               {"logprobs", nullptr},
                               {"message", {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", tool_calls}}}}});
  r["usage"] = usage_json(usage);
  return r;
}

json tool_calls_chunk(const ResponseIds& ids, const json& tool_calls) {
  json r = head(ids, true);
  json calls = json::array();
  for (size_t i = 0; i < tool_calls.size(); ++i) {
    json c = tool_calls[i];
    c["index"] = i;
    calls.push_back(std::move(c));
  }
  r["choices"] = json::array({{{"index", 0}, {"finish_reason", nullptr}, {"logprobs", nullptr}, {"delta", {{"tool_calls", calls}}}}});
  return r;
}

json completion_chunk(const ResponseIds& ids, const std::string& text, const std::string& finish_reason,
                      const json& logprobs, bool first) {
  if (ids.native) {
    json r = {{"content", text}, {"stop", false}};
    if (!logprobs.is_null()) r["completion_probabilities"] = logprobs;
    return r;
  }
  json r = head(ids, true);
  json choice = {{"index", 0}, {"finish_reason", reason(finish_reason)}, {"logprobs", logprobs}};
  if (ids.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || first) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  r["choices"] = json::array({choice});
  return r;
}

json usage_chunk(const ResponseIds& ids, const Usage& usage) {
  json r = head(ids, true);
  r["choices"] = json::array();
  r["usage"] = usage_json(usage);
  return r;
}

json logprobs_json(bool chat, const Tokenizer& tok, const std::vector<TokenLogprob>& lps, size_t text_offset) {
  if (chat) {
    json content = json::array();
    for (const TokenLogprob& lp : lps) {
      const std::string piece = tok.token_to_piece(lp.token);
      json top = json::array();
      for (const auto& [id, logprob] : lp.top) {
        const std::string p = tok.token_to_piece(id);
        top.push_back({{"token", utf8_sanitize(p)}, {"logprob", logprob}, {"bytes", byte_list(p)}});
      }
      content.push_back({{"token", utf8_sanitize(piece)}, {"logprob", lp.logprob}, {"bytes", byte_list(piece)},
                         {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string piece = tok.token_to_piece(lp.token);
    tokens.push_back(utf8_sanitize(piece));
    token_logprobs.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [id, logprob] : lp.top) top[utf8_sanitize(tok.token_to_piece(id))] = logprob;
    top_logprobs.push_back(top);
    offsets.push_back(text_offset);
    text_offset += piece.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs}, {"text_offset", offsets}};
}

}  // namespace bitnet::server
