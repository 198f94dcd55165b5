#pragma once
// The body of POST /v1/chat/completions and /v1/completions, read and checked: every known field has its type
// and range checked (ApiError 400 naming the field otherwise), and a field the server does not know, or knows
// but does not implement, is a 400 naming it: nothing a client asks for is dropped in silence.
#include <bitnet/chat_template.h>
#include <bitnet/sequence_generator.h>

#include <nlohmann/json.hpp>

#include "server/tool_calls.h"

#include <string>
#include <vector>

namespace bitnet::server {

// The request body as JSON (ApiError 400 when it is not, or nests deeper than a fixed limit).
// Objects keep their keys in the order written (a JSON schema's properties are generated in that order).
nlohmann::ordered_json parse_json_body(const std::string& body);

struct RequestLimits {
  int max_tokens = 1024;   // default and cap of max_tokens
  int32_t vocab = 0;       // token ids in a prompt must be below this
  SamplingParams sampling; // the server's defaults for the sampling fields a request leaves out
  int64_t seed = -1;       // the server's default seed (-1: a fresh one per request)
};

// "messages" of a chat body (also /apply-template's), checked; ApiError 400 naming the message and field.
std::vector<ChatMessage> parse_chat_messages(const nlohmann::ordered_json& body);

struct GenerationRequest {
  bool chat = false;
  std::vector<ChatMessage> messages;   // chat
  std::string prompt;                  // completions, when given as text
  std::vector<int32_t> prompt_ids;     // completions, when given as token ids
  bool prompt_is_ids = false;
  SequenceOptions options;             // budget, sampling (seed drawn when not given), stop, log-probabilities
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage: a last chunk with the token counts
  bool logprobs = false;
  bool cache_prompt = true;            // llama-server's field: start from a slot's cached prefix of the prompt
  ToolRequest tools;                   // chat: the functions offered and tool_choice
};

GenerationRequest parse_generation_request(const nlohmann::ordered_json& body, bool chat, const RequestLimits& limits);

// POST /tokenize {"content", "add_special", "parse_special", "with_pieces"} and POST /detokenize {"tokens"}.
struct TokenizeRequest {
  std::string content;
  bool add_special = false;
  bool parse_special = true;
  bool with_pieces = false;
};
TokenizeRequest parse_tokenize_request(const nlohmann::ordered_json& body);
std::vector<int32_t> parse_detokenize_request(const nlohmann::ordered_json& body, int32_t vocab);

}  // namespace bitnet::server
