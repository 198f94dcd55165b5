// Tool calling (see tool_calls.h).
#include "server/tool_calls.h"

#include <bitnet/grammar.h>
#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "server/api_error.h"

namespace bitnet::server {

using json = nlohmann::ordered_json;

namespace {

constexpr size_t kMaxTools = 128;

std::string call_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("call_{:016x}", rng());
}

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// {"name": known, "arguments" | "parameters": object or JSON text of one} -> a call.
std::optional<ToolCall> as_call(const json& j, const ToolRequest& tools) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return std::nullopt;
  const std::string name = j["name"].get<std::string>();
  if (std::find(tools.names.begin(), tools.names.end(), name) == tools.names.end()) return std::nullopt;
  json args = json::object();
  for (const char* key : {"arguments", "parameters"}) {
    if (!j.contains(key)) continue;
    args = j[key];
    if (args.is_string()) args = json::parse(args.get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (!args.is_object()) return std::nullopt;
  }
  for (const auto& [key, value] : j.items())
    if (key != "name" && key != "arguments" && key != "parameters") return std::nullopt;
  return ToolCall{call_id(), name, args.dump()};
}

// A JSON object or an array of objects, each a call.
std::optional<std::vector<ToolCall>> calls_in_json(std::string_view text, const ToolRequest& tools) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  std::vector<ToolCall> out;
  if (j.is_array()) {
    if (j.empty()) return std::nullopt;
    for (const json& item : j) {
      auto c = as_call(item, tools);
      if (!c) return std::nullopt;
      out.push_back(std::move(*c));
    }
  } else if (auto c = as_call(j, tools)) {
    out.push_back(std::move(*c));
  } else {
    return std::nullopt;
  }
  return out;
}

}  // namespace

ToolRequest parse_tool_request(const json& body) {
  ToolRequest t;
  const auto tools = body.find("tools");
  const bool has_tools = tools != body.end() && !tools->is_null();
  if (has_tools) {
    if (!tools->is_array()) throw bad_request("'tools' must be an array of {\"type\": \"function\", \"function\": {...}}");
    if (tools->size() > kMaxTools) throw bad_request(fmt::format("'tools' may hold at most {} functions", kMaxTools));
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& tool = (*tools)[i];
      if (!tool.is_object() || !tool.contains("type") || tool["type"] != "function" || !tool.contains("function") ||
          !tool["function"].is_object())
        throw bad_request(fmt::format("'tools'[{}] must be {{\"type\": \"function\", \"function\": {{\"name\", ...}}}}", i));
      const json& f = tool["function"];
      if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
        throw bad_request(fmt::format("'tools'[{}].function.name must be a non-empty string", i));
      for (const auto& [key, value] : f.items())
        if (key != "name" && key != "description" && key != "parameters" && key != "strict")
          throw bad_request(fmt::format("'tools'[{}].function.{} is not supported", i, key));
      const std::string name = f["name"].get<std::string>();
      if (std::find(t.names.begin(), t.names.end(), name) != t.names.end())
        throw bad_request(fmt::format("'tools' names the function '{}' twice", name));
      t.names.push_back(name);
      t.parameters.push_back(f.contains("parameters") && !f["parameters"].is_null() ? f["parameters"] : json::object());
    }
    t.tools_json = tools->dump();
  }
  t.choice = has_tools && !t.names.empty() ? ToolRequest::Choice::automatic : ToolRequest::Choice::none;
  if (const auto c = body.find("tool_choice"); c != body.end() && !c->is_null()) {
    if (c->is_string()) {
      const std::string v = c->get<std::string>();
      if (v == "none") t.choice = ToolRequest::Choice::none;
      else if (v == "auto") t.choice = t.names.empty() ? ToolRequest::Choice::none : ToolRequest::Choice::automatic;
      else if (v == "required") t.choice = ToolRequest::Choice::required;
      else throw bad_request(fmt::format("'tool_choice' must be \"none\", \"auto\", \"required\" or a function, got \"{}\"", v));
    } else if (c->is_object() && c->value("type", "") == "function" && c->contains("function") &&
               (*c)["function"].is_object() && (*c)["function"].contains("name") && (*c)["function"]["name"].is_string()) {
      t.choice = ToolRequest::Choice::named;
      t.named = (*c)["function"]["name"].get<std::string>();
      if (std::find(t.names.begin(), t.names.end(), t.named) == t.names.end())
        throw bad_request(fmt::format("'tool_choice' names '{}', which is not among the tools", t.named));
    } else {
      throw bad_request("'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    if (t.choice == ToolRequest::Choice::required && t.names.empty())
      throw bad_request("'tool_choice' is \"required\" but there are no 'tools'");
  }
  if (const auto p = body.find("parallel_tool_calls"); p != body.end() && !p->is_null()) {
    if (!p->is_boolean()) throw bad_request("'parallel_tool_calls' must be true or false");
    t.parallel = p->get<bool>();
  }
  return t;
}

std::string forced_call_grammar(const ToolRequest& tools) {
  using ordered = json;  // keys in written order: "name" before "arguments", as models write calls
  ordered options = ordered::array();
  for (size_t i = 0; i < tools.names.size(); ++i) {
    if (tools.choice == ToolRequest::Choice::named && tools.names[i] != tools.named) continue;
    options.push_back({{"type", "object"},
                       {"properties", {{"name", {{"const", tools.names[i]}}},
                                       {"arguments", tools.parameters[i]}}},
                       {"required", {"name", "arguments"}},
                       {"additionalProperties", false}});
  }
  const ordered call = options.size() == 1 ? options[0] : ordered{{"anyOf", options}};
  const ordered schema = tools.parallel && tools.choice == ToolRequest::Choice::required
                             ? ordered{{"type", "array"}, {"items", call}, {"minItems", 1}}
                             : call;
  return json_schema_to_gbnf(schema.dump(), "tools");
}

std::string tools_system_prompt(const ToolRequest& tools) {
  json list = json::array();
  const json given = json::parse(tools.tools_json);
  for (const json& t : given) list.push_back(t["function"]);
  return "You can call these functions:\n" + list.dump(2) +
         "\nTo call a function, answer with only a JSON object {\"name\": <function name>, \"arguments\": "
         "<an object of its parameters>} (a JSON array of such objects for several calls); otherwise answer "
         "normally.";
}

namespace {
std::optional<std::vector<ToolCall>> any_calls(std::string_view text, const ToolRequest& tools) {
  std::string_view t = trim(text);
  if (t.empty()) return std::nullopt;
  for (std::string_view prefix : {"<|python_tag|>", "[TOOL_CALLS]"})
    if (t.substr(0, prefix.size()) == prefix) return calls_in_json(trim(t.substr(prefix.size())), tools);
  if (t.substr(0, 11) == "<tool_call>") {  // one or more blocks, nothing else around them
    std::vector<ToolCall> out;
    while (!t.empty()) {
      if (t.substr(0, 11) != "<tool_call>") return std::nullopt;
      const size_t end = t.find("</tool_call>");
      if (end == std::string_view::npos) return std::nullopt;
      auto calls = calls_in_json(trim(t.substr(11, end - 11)), tools);
      if (!calls || calls->size() != 1) return std::nullopt;
      out.push_back(std::move((*calls)[0]));
      t = trim(t.substr(end + 12));
    }
    return out;
  }
  if (t.front() == '{' || t.front() == '[') return calls_in_json(t, tools);
  return std::nullopt;
}
}  // namespace

std::optional<std::vector<ToolCall>> parse_tool_calls(std::string_view text, const ToolRequest& tools) {
  auto calls = any_calls(text, tools);
  // parallel_tool_calls false: an answer with several calls is not one the request allows, so it stays text.
  if (calls && !tools.parallel && calls->size() > 1) return std::nullopt;
  return calls;
}

bool may_become_tool_call(std::string_view text) {
  const std::string_view t = trim(text);
  if (t.empty()) return true;
  if (t.front() == '{' || t.front() == '[') return true;
  for (std::string_view start : {"<|python_tag|>", "[TOOL_CALLS]", "<tool_call>"}) {
    const size_t n = std::min(t.size(), start.size());
    if (t.substr(0, n) == start.substr(0, n)) return true;
  }
  return false;
}

json tool_calls_json(const std::vector<ToolCall>& calls) {
  json out = json::array();
  for (const ToolCall& c : calls)
    out.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  return out;
}

}  // namespace bitnet::server
