// Request bodies -> checked generation requests (see openai_request.h). Ranges follow OpenAI's API reference
// where it gives one (temperature 0..2, penalties -2..2, top_logprobs 0..20, logprobs 0..5) and the sampler's
// own limits elsewhere; NaN and infinities cannot pass (JSON has no NaN; 1e999 parses as infinity).
#include "server/openai_request.h"

#include <fmt/format.h>

#include <cmath>
#include <random>

#include <bitnet/error.h>
#include <bitnet/grammar.h>

#include <limits>
#include <set>

#include "server/api_error.h"

namespace bitnet::server {

namespace {

using json = nlohmann::ordered_json;  // request bodies keep their key order

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 512;

const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* name, double lo, double hi, double fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) throw bad_request(fmt::format("'{}' must be a number", name));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad_request(fmt::format("'{}' must be a number in [{}, {}], got {}", name, lo, hi, v->dump()));
  return x;
}

int64_t integer(const json& body, const char* name, int64_t lo, int64_t hi, int64_t fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number_integer()) throw bad_request(fmt::format("'{}' must be an integer", name));
  // Unsigned values above INT64_MAX are out of range too.
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
    throw bad_request(fmt::format("'{}' must be an integer in [{}, {}], got {}", name, lo, hi, v->dump()));
  const auto x = v->get<int64_t>();
  if (x < lo || x > hi) throw bad_request(fmt::format("'{}' must be an integer in [{}, {}], got {}", name, lo, hi, x));
  return x;
}

bool boolean(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) throw bad_request(fmt::format("'{}' must be true or false", name));
  return v->get<bool>();
}

std::vector<std::string> stop_strings(const json& body) {
  const json* v = field(body, "stop");
  if (!v) return {};
  std::vector<std::string> out;
  auto take = [&](const json& s) {
    if (!s.is_string()) throw bad_request("'stop' must be a string or an array of strings");
    std::string text = s.get<std::string>();
    if (text.size() > kMaxStopBytes) throw bad_request(fmt::format("a stop string may have at most {} bytes", kMaxStopBytes));
    if (!text.empty()) out.push_back(std::move(text));  // an empty stop string could never be told apart: ignored
  };
  if (v->is_array()) {
    if (v->size() > kMaxStopStrings) throw bad_request(fmt::format("'stop' may hold at most {} strings", kMaxStopStrings));
    for (const json& s : *v) take(s);
  } else {
    take(*v);
  }
  return out;
}

std::string message_content(const json& content, size_t index) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    throw bad_request(fmt::format("messages[{}].content must be a string or an array of content parts", index));
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string())
      throw bad_request(fmt::format("messages[{}].content: only text parts ({{\"type\":\"text\",\"text\":...}}) are supported", index));
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

}  // namespace

std::vector<ChatMessage> parse_chat_messages(const json& body) {
  const json* v = field(body, "messages");
  if (!v || !v->is_array() || v->empty()) throw bad_request("'messages' must be a non-empty array");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || m["role"].get<std::string>().empty())
      throw bad_request(fmt::format("messages[{}] must be an object with a 'role' string", i));
    // Fields a client echoes back from an earlier answer are fine when empty; anything else is refused by name.
    for (const auto& [key, value] : m.items()) {
      if (key == "role" || key == "content" || key == "name" || key == "tool_calls" || key == "tool_call_id") continue;
      const bool empty = value.is_null() || (value.is_array() && value.empty());
      if (!empty || (key != "refusal" && key != "function_call" && key != "audio" && key != "annotations"))
        throw bad_request(fmt::format("messages[{}].{} is not supported", i, key));
    }
    ChatMessage msg{m["role"].get<std::string>(), message_content(m.value("content", json()), i)};
    msg.content_is_null = !m.contains("content") || m["content"].is_null();
    if (const json* calls = field(m, "tool_calls")) {
      if (!calls->is_array()) throw bad_request(fmt::format("messages[{}].tool_calls must be an array", i));
      for (const json& c : *calls)
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object() || !c["function"].contains("name"))
          throw bad_request(fmt::format("messages[{}].tool_calls: each call is {{\"id\", \"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}", i));
      if (!calls->empty()) msg.tool_calls_json = calls->dump();
    }
    for (const char* key : {"tool_call_id", "name"}) {
      const json* f = field(m, key);
      if (f && !f->is_string()) throw bad_request(fmt::format("messages[{}].{} must be a string", i, key));
      if (f) (std::string(key) == "name" ? msg.name : msg.tool_call_id) = f->get<std::string>();
    }
    out.push_back(std::move(msg));
  }
  return out;
}

namespace {

std::vector<int32_t> token_ids(const json& array, int32_t vocab, const char* what) {
  std::vector<int32_t> ids;
  for (const json& t : array) {
    if (!t.is_number_integer()) throw bad_request(fmt::format("{} must be integers", what));
    const auto id = t.get<int64_t>();
    if (id < 0 || id >= vocab || (t.is_number_unsigned() && t.get<uint64_t>() >= static_cast<uint64_t>(vocab)))
      throw bad_request(fmt::format("{}: token id {} is outside the vocabulary (0..{})", what, t.dump(), vocab - 1));
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// "prompt": a string, a list holding one string, a list of token ids, or a list holding one list of ids.
void completion_prompt(const json& body, int32_t vocab, GenerationRequest& r) {
  const json* v = field(body, "prompt");
  if (!v) throw bad_request("'prompt' is required");
  const json* p = v;
  if (v->is_array() && v->size() == 1 && ((*v)[0].is_string() || (*v)[0].is_array())) p = &(*v)[0];
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
    return;
  }
  if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    r.prompt_ids = token_ids(*p, vocab, "'prompt'");
    r.prompt_is_ids = true;
    return;
  }
  throw bad_request("'prompt' must be a string or a list of token ids (one prompt per request)");
}

// Every field a request may carry; anything else is a 400 naming it (a field that changes the output cannot be
// dropped in silence). `user` is OpenAI's end-user tag: it changes nothing generated.
void check_known_fields(const json& body, bool chat) {
  static const std::set<std::string, std::less<>> common = {
      "model", "max_tokens", "n_predict", "temperature", "top_p", "top_k", "min_p", "presence_penalty",
      "frequency_penalty", "repeat_penalty", "repetition_penalty", "repeat_last_n", "seed", "stop", "stream",
      "stream_options", "n", "echo", "logprobs", "user", "grammar", "json_schema", "response_format", "logit_bias",
      "ignore_eos", "cache_prompt", "best_of", "typical_p", "mirostat", "mirostat_tau", "mirostat_eta", "n_probs",
      "suffix"};
  static const std::set<std::string, std::less<>> chat_only = {"messages", "max_completion_tokens", "top_logprobs",
                                                               "tools", "tool_choice", "parallel_tool_calls"};
  static const std::set<std::string, std::less<>> completion_only = {"prompt"};
  for (const auto& [key, value] : body.items())
    if (!common.count(key) && !(chat ? chat_only : completion_only).count(key))
      throw bad_request(fmt::format("'{}' is not supported by this server (docs/server.md lists the fields it honours)", key));
}

// Fields this server knows but does not implement: accepted only with the value that changes nothing.
void neutral_only(const json& body, const char* name, const json& neutral, const char* why) {
  const json* v = field(body, name);
  if (v && *v != neutral) throw bad_request(fmt::format("'{}' is not supported: {}", name, why));
}

// The output constraint: a GBNF grammar, a JSON schema, or OpenAI's response_format; at most one of them.
std::shared_ptr<const Grammar> output_constraint(const json& body) {
  const json* grammar = field(body, "grammar");
  const json* schema = field(body, "json_schema");
  const json* format = field(body, "response_format");
  if ((grammar != nullptr) + (schema != nullptr) + (format != nullptr) > 1)
    throw bad_request("give at most one of 'grammar', 'json_schema' and 'response_format'");
  try {
    if (grammar) {
      if (!grammar->is_string()) throw bad_request("'grammar' must be a string (GBNF)");
      if (grammar->get<std::string>().empty()) return nullptr;
      return Grammar::parse(grammar->get<std::string>(), "grammar");
    }
    if (schema) {
      if (!schema->is_object() && !schema->is_boolean()) throw bad_request("'json_schema' must be a JSON schema object");
      return Grammar::from_json_schema(schema->dump(), "json_schema");
    }
    if (format) {
      if (!format->is_object() || !format->contains("type") || !(*format)["type"].is_string())
        throw bad_request("'response_format' must be an object with a 'type' string");
      const std::string type = (*format)["type"].get<std::string>();
      for (const auto& [key, value] : format->items())
        if (key != "type" && key != (type == "json_object" ? "schema" : "json_schema"))
          throw bad_request(fmt::format("'response_format.{}' is not supported with type \"{}\"", key, type));
      if (type == "text") {
        if (format->size() > 1) throw bad_request("'response_format' of type \"text\" takes no other field");
        return nullptr;
      }
      if (type == "json_object") {  // llama-server also takes a schema here
        const json* s = field(*format, "schema");
        return s ? Grammar::from_json_schema(s->dump(), "response_format.schema") : Grammar::any_json();
      }
      if (type == "json_schema") {
        const json* js = field(*format, "json_schema");
        if (!js || !js->is_object() || !js->contains("schema"))
          throw bad_request("'response_format.json_schema' must be an object with a 'schema'");
        for (const auto& [key, value] : js->items())
          if (key != "name" && key != "schema" && key != "strict" && key != "description")
            throw bad_request(fmt::format("'response_format.json_schema.{}' is not supported", key));
        return Grammar::from_json_schema((*js)["schema"].dump(), "response_format.json_schema.schema");
      }
      throw bad_request(fmt::format("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", got \"{}\"", type));
    }
  } catch (const Error& e) {
    throw bad_request(e.what());
  }
  return nullptr;
}

// OpenAI's {"token id": bias} (bias in [-100, 100]) or llama-server's [[id, bias], ...]; a bias of false bans the
// token.
std::vector<std::pair<int32_t, float>> logit_bias(const json& body, int32_t vocab) {
  const json* v = field(body, "logit_bias");
  if (!v) return {};
  constexpr size_t kMaxEntries = 1024;
  if (v->size() > kMaxEntries) throw bad_request(fmt::format("'logit_bias' may hold at most {} tokens", kMaxEntries));
  std::vector<std::pair<int32_t, float>> out;
  auto add = [&](int64_t id, const json& bias) {
    if (id < 0 || id >= vocab)
      throw bad_request(fmt::format("'logit_bias': token id {} is outside the vocabulary (0..{})", id, vocab - 1));
    if (bias.is_boolean() && !bias.get<bool>()) {
      out.emplace_back(static_cast<int32_t>(id), -std::numeric_limits<float>::infinity());
      return;
    }
    if (!bias.is_number() || bias.get<double>() < -100 || bias.get<double>() > 100)
      throw bad_request(fmt::format("'logit_bias' of token {} must be a number in [-100, 100] or false", id));
    out.emplace_back(static_cast<int32_t>(id), static_cast<float>(bias.get<double>()));
  };
  if (v->is_object()) {
    for (const auto& [key, bias] : v->items()) {
      size_t used = 0;
      int64_t id = -1;
      try {
        id = std::stoll(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != key.size() || key.empty())
        throw bad_request(fmt::format("'logit_bias' keys must be token ids, got \"{}\"", key));
      add(id, bias);
    }
  } else if (v->is_array()) {
    for (const json& pair : *v) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer())
        throw bad_request("'logit_bias' as an array holds [token id, bias] pairs");
      add(pair[0].get<int64_t>(), pair[1]);
    }
  } else {
    throw bad_request("'logit_bias' must be an object {\"token id\": bias} or an array of [id, bias] pairs");
  }
  return out;
}

}  // namespace

json parse_json_body(const std::string& body) {
  // Deep nesting is refused while parsing (nlohmann's parser is iterative, but a deep value is costly later).
  const json::parser_callback_t depth_limit = [](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) throw bad_request(fmt::format("the request JSON nests deeper than {} levels", kMaxJsonDepth));
    return true;
  };
  try {
    return json::parse(body, depth_limit);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers such as 1e999
    throw bad_request(fmt::format("the request body is not valid JSON (UTF-8): {}", e.what()));
  }
}

GenerationRequest parse_generation_request(const json& body, bool chat, const RequestLimits& limits) {
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  check_known_fields(body, chat);
  neutral_only(body, "best_of", 1, "one completion is generated per request");
  neutral_only(body, "n_probs", 0, "use 'logprobs' (and 'top_logprobs')");
  neutral_only(body, "suffix", "", "fill-in-the-middle goes through POST /infill (input_prefix, input_suffix)");
  GenerationRequest r;
  r.chat = chat;
  if (chat) {
    r.messages = parse_chat_messages(body);
  } else {
    completion_prompt(body, limits.vocab, r);
  }
  if (integer(body, "n", 1, 1, 1) != 1) throw bad_request("'n' must be 1");
  if (boolean(body, "echo", false)) throw bad_request("'echo' is not supported");
  r.stream = boolean(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad_request("'stream_options' must be an object");
    for (const auto& [key, value] : so->items())
      if (key != "include_usage") throw bad_request(fmt::format("'stream_options.{}' is not supported", key));
    r.include_usage = boolean(*so, "include_usage", false);
  }

  // Budget: max_completion_tokens (chat's current name), max_tokens, or llama.cpp's n_predict (-1: the cap).
  SequenceOptions& o = r.options;
  int64_t budget = limits.max_tokens;
  for (const char* name : {"n_predict", "max_tokens", "max_completion_tokens"})
    if (field(body, name)) {
      const int64_t n = integer(body, name, -1, INT64_MAX, limits.max_tokens);
      if (n == 0 || (n < 0 && std::string(name) != "n_predict"))
        throw bad_request(fmt::format("'{}' must be a positive integer, got {}", name, n));
      budget = n < 0 ? limits.max_tokens : n;
    }
  o.max_tokens = static_cast<int>(std::min<int64_t>(budget, limits.max_tokens));  // the server's cap wins

  SamplingParams& s = o.sampling;
  s = limits.sampling;
  s.temperature = static_cast<float>(number(body, "temperature", 0, 2, s.temperature));
  s.top_p = static_cast<float>(number(body, "top_p", 0, 1, s.top_p));
  if (s.top_p == 0) {  // OpenAI accepts 0: only the most likely token remains, i.e. greedy
    s.top_p = 1;
    s.temperature = 0;
  }
  s.top_k = static_cast<int32_t>(integer(body, "top_k", 0, INT32_MAX, s.top_k));
  s.min_p = static_cast<float>(number(body, "min_p", 0, 1, s.min_p));
  s.presence_penalty = static_cast<float>(number(body, "presence_penalty", -2, 2, s.presence_penalty));
  s.frequency_penalty = static_cast<float>(number(body, "frequency_penalty", -2, 2, s.frequency_penalty));
  s.repeat_penalty = static_cast<float>(number(body, "repeat_penalty", 0, 10, s.repeat_penalty));
  s.repeat_penalty = static_cast<float>(number(body, "repetition_penalty", 0, 10, s.repeat_penalty));
  if (s.repeat_penalty <= 0) throw bad_request("the repetition penalty must be > 0");
  s.repeat_last_n = static_cast<int32_t>(integer(body, "repeat_last_n", 0, 1 << 20, s.repeat_last_n));
  s.typical_p = static_cast<float>(number(body, "typical_p", 1e-6, 1, s.typical_p));
  s.mirostat = static_cast<int32_t>(integer(body, "mirostat", 0, 2, s.mirostat));
  s.mirostat_tau = static_cast<float>(number(body, "mirostat_tau", 1e-6, 100, s.mirostat_tau));
  s.mirostat_eta = static_cast<float>(number(body, "mirostat_eta", 1e-6, 1, s.mirostat_eta));
  const int64_t seed = integer(body, "seed", INT64_MIN, INT64_MAX, limits.seed);
  s.seed = seed == -1 ? std::random_device{}() : static_cast<uint64_t>(seed);  // -1 or absent: a fresh seed
  s.logit_bias = logit_bias(body, limits.vocab);
  o.stop = stop_strings(body);
  o.ignore_eos = boolean(body, "ignore_eos", false);
  r.cache_prompt = boolean(body, "cache_prompt", true);
  if (const json* m = field(body, "model"); m && !m->is_string()) throw bad_request("'model' must be a string");
  if (const json* u = field(body, "user"); u && !u->is_string()) throw bad_request("'user' must be a string");
  o.grammar = output_constraint(body);
  if (chat) {
    r.tools = parse_tool_request(body);
    using Choice = ToolRequest::Choice;
    if (r.tools.choice == Choice::required || r.tools.choice == Choice::named) {
      if (o.grammar) throw bad_request("a required tool call cannot be combined with 'grammar', 'json_schema' or 'response_format'");
      try {
        o.grammar = Grammar::parse(forced_call_grammar(r.tools), "tools");
      } catch (const Error& e) {
        throw bad_request(std::string("'tools': ") + e.what());
      }
    }
  }

  if (chat) {
    r.logprobs = boolean(body, "logprobs", false);
    const int64_t top = integer(body, "top_logprobs", 0, 20, 0);
    if (field(body, "top_logprobs") && !r.logprobs) throw bad_request("'top_logprobs' requires 'logprobs': true");
    if (r.logprobs) o.top_logprobs = static_cast<int>(top);
  } else if (field(body, "logprobs")) {
    r.logprobs = true;
    o.top_logprobs = static_cast<int>(integer(body, "logprobs", 0, 5, 0));
  }
  return r;
}

TokenizeRequest parse_tokenize_request(const json& body) {
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  const json* c = field(body, "content");
  if (!c || !c->is_string()) throw bad_request("'content' must be a string");
  return {c->get<std::string>(), boolean(body, "add_special", false), boolean(body, "parse_special", true),
          boolean(body, "with_pieces", false)};
}

std::vector<int32_t> parse_detokenize_request(const json& body, int32_t vocab) {
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  const json* t = field(body, "tokens");
  if (!t || !t->is_array()) throw bad_request("'tokens' must be an array of token ids");
  return token_ids(*t, vocab, "'tokens'");
}

}  // namespace bitnet::server
