#pragma once
// OpenAI tool calling over a chat template: the request's tools and tool_choice, the grammar that forces a call
// when one is required, and the parser that finds calls in what the model wrote. Calls are recognized in the
// shapes chat-tuned models write them: a JSON object {"name", "arguments" | "parameters"} (Llama 3.x, also after
// <|python_tag|>), a JSON array of such objects, <tool_call>...</tool_call> blocks (Hermes, Qwen) and
// [TOOL_CALLS] followed by an array (Mistral). A name that is not among the request's tools is not a call.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::server {

struct ToolRequest {
  enum class Choice { none, automatic, required, named };
  std::vector<std::string> names;        // the functions offered, in order
  std::vector<nlohmann::ordered_json> parameters;  // their JSON schemas ({} when absent), keys in written order
  std::string tools_json;                // the request's "tools" array as given (for the chat template)
  Choice choice = Choice::none;
  std::string named;                     // Choice::named: the function to call
  bool parallel = true;                  // parallel_tool_calls: several calls in one answer
  bool active() const { return !names.empty() && choice != Choice::none; }
};

// From a chat request body ("tools", "tool_choice", "parallel_tool_calls"); ApiError 400 naming the field.
ToolRequest parse_tool_request(const nlohmann::ordered_json& body);

// GBNF that forces what tool_choice required / named asks for: one call {"name": ..., "arguments": {...}} whose
// arguments follow the function's schema (or, with parallel calls, a JSON array of one or more of them).
std::string forced_call_grammar(const ToolRequest& tools);

// A system-prompt paragraph listing the tools and the shape of a call, for templates that do not render tools.
std::string tools_system_prompt(const ToolRequest& tools);

struct ToolCall {
  std::string id;         // "call_" + random hex
  std::string name;
  std::string arguments;  // a JSON object's text, as OpenAI sends it
};

// The calls in `text`, or nothing when it is not (wholly) a tool call, or holds several and the request said
// parallel_tool_calls false.
std::optional<std::vector<ToolCall>> parse_tool_calls(std::string_view text, const ToolRequest& tools);

// Whether `text` (what was generated so far) may still become a tool call: it is empty, blank, or starts with
// the beginning of one of the call shapes. While it may, a stream holds the text back.
bool may_become_tool_call(std::string_view text);

// OpenAI's message.tool_calls array.
nlohmann::ordered_json tool_calls_json(const std::vector<ToolCall>& calls);

}  // namespace bitnet::server
