#pragma once
// Response bodies in OpenAI's shapes: chat.completion / text_completion objects, their streamed chunks, and
// log-probabilities (chat: content[{token, logprob, bytes, top_logprobs}]; completions: tokens,
// token_logprobs, top_logprobs, text_offset).
#include <bitnet/sequence_generator.h>
#include <bitnet/tokenizer.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace bitnet::server {

struct ResponseIds {
  bool chat = false;
  bool native = false;  // llama-server's /completion and /infill: {"content", "stop", ...} objects
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  std::string model;
  int64_t created = 0;  // Unix seconds
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens reused from the cache (OpenAI's usage.prompt_tokens_details)
};

// llama-server's native answer (also the last event of its stream): the text, "stop": true, why it stopped
// (stop_type eos / word / limit, stopping_word) and the token counts.
nlohmann::json native_response(const ResponseIds& ids, const std::string& text, const std::string& finish_reason,
                               const std::string& stop_word, const nlohmann::json& probs, const Usage& usage);

// The whole (non-streamed) response. `logprobs` is null when the request did not ask for them.
nlohmann::json completion_response(const ResponseIds& ids, const std::string& text, const std::string& finish_reason,
                                   const nlohmann::json& logprobs, const Usage& usage);
// A chat answer that calls tools: message.content null, message.tool_calls, finish_reason "tool_calls".
nlohmann::json tool_calls_response(const ResponseIds& ids, const nlohmann::json& tool_calls, const Usage& usage);
// The streamed form: one chunk whose delta carries every call whole (index, id, type, function name and arguments).
nlohmann::json tool_calls_chunk(const ResponseIds& ids, const nlohmann::json& tool_calls);
// One streamed chunk: text and/or the finish reason (empty: null). `first` adds the assistant role (chat).
nlohmann::json completion_chunk(const ResponseIds& ids, const std::string& text, const std::string& finish_reason,
                                const nlohmann::json& logprobs, bool first);
// The last chunk when stream_options.include_usage is set: no choices, the token counts.
nlohmann::json usage_chunk(const ResponseIds& ids, const Usage& usage);

// Log-probabilities of some generated tokens in the request kind's shape; `text_offset` is where the first of
// them starts in the completion text (completions only).
nlohmann::json logprobs_json(bool chat, const Tokenizer& tok, const std::vector<TokenLogprob>& lps, size_t text_offset);

}  // namespace bitnet::server
