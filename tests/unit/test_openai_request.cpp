// Request bodies of the OpenAI routes: every known field's type and range checked (400 naming it), unknown
// fields refused by name, the server's max_tokens cap applied, prompts as text or ids, output constraints.
#include <gtest/gtest.h>

#include <cmath>

#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/tool_calls.h"

#include <bitnet/grammar.h>

namespace bitnet::server {
namespace {

using json = nlohmann::ordered_json;

const RequestLimits kLimits{.max_tokens = 100, .vocab = 1000, .sampling = {}, .seed = -1};

GenerationRequest chat(const std::string& extra) {
  return parse_generation_request(parse_json_body(R"({"messages":[{"role":"user","content":"hi"}])" + extra + "}"), true, kLimits);
}

// The 400 message for a chat body with `extra` fields ("" when accepted).
std::string chat_error(const std::string& extra) {
  try {
    chat(extra);
    return "";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.type(), "invalid_request_error");
    return e.what();
  }
}

TEST(OpenAiRequest, AcceptsTheUsualFieldsAndRefusesUnknownOnes) {
  const GenerationRequest r = chat(R"(, "model":"x", "temperature":0.5, "top_p":0.9, "top_k":5, "min_p":0.1,
      "presence_penalty":1, "frequency_penalty":-1, "repetition_penalty":1.1, "seed":42, "max_tokens":7,
      "stop":["a","b"], "stream":true, "stream_options":{"include_usage":true}, "logprobs":true, "top_logprobs":3,
      "user":"u", "cache_prompt":false, "ignore_eos":true, "best_of":1, "typical_p":1, "mirostat":0, "tools":[],
      "logit_bias":{"5":-2.5,"7":false})");
  EXPECT_FALSE(r.cache_prompt);
  EXPECT_TRUE(r.options.ignore_eos);
  ASSERT_EQ(r.options.sampling.logit_bias.size(), 2u);
  EXPECT_EQ(r.options.sampling.logit_bias[0], (std::pair<int32_t, float>{5, -2.5f}));
  EXPECT_EQ(r.options.sampling.logit_bias[1].first, 7);
  EXPECT_TRUE(std::isinf(r.options.sampling.logit_bias[1].second));
  EXPECT_NE(chat_error(R"(, "some_future_field":{"x":[1,2]})").find("'some_future_field' is not supported"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "prompt":"x")").find("'prompt' is not supported"), std::string::npos);  // a completions field
  EXPECT_NE(chat_error(R"(, "suffix":"x")").find("fill-in-the-middle"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "stream":true, "stream_options":{"include_usage":true,"x":1})").find("'stream_options.x'"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "logit_bias":{"1000":1})").find("outside the vocabulary"), std::string::npos);
  EXPECT_FLOAT_EQ(r.options.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.options.sampling.top_p, 0.9f);
  EXPECT_EQ(r.options.sampling.top_k, 5);
  EXPECT_FLOAT_EQ(r.options.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(r.options.sampling.seed, 42u);
  EXPECT_EQ(r.options.max_tokens, 7);
  EXPECT_EQ(r.options.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.stream && r.include_usage && r.logprobs);
  EXPECT_EQ(r.options.top_logprobs, 3);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].content, "hi");
}

TEST(OpenAiRequest, BudgetDefaultsToAndIsCappedByTheServerLimit) {
  EXPECT_EQ(chat("").options.max_tokens, 100);
  EXPECT_EQ(chat(R"(, "max_tokens": 100000)").options.max_tokens, 100);
  EXPECT_EQ(chat(R"(, "max_completion_tokens": 3)").options.max_tokens, 3);
  EXPECT_EQ(chat(R"(, "n_predict": -1)").options.max_tokens, 100);
}

TEST(OpenAiRequest, RefusesOutOfRangeAndMistypedValuesNamingTheField) {
  EXPECT_NE(chat_error(R"(, "temperature": -1)").find("temperature"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "temperature": 1e999)").find("1e999"), std::string::npos);  // not a double: 400
  EXPECT_NE(chat_error(R"(, "temperature": "NaN")").find("temperature"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "top_p": 1.5)").find("top_p"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "top_k": -1)").find("top_k"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "min_p": 2)").find("min_p"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "presence_penalty": 3)").find("presence_penalty"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "repetition_penalty": 0)").find("penalty"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "max_tokens": 0)").find("max_tokens"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "max_tokens": -5)").find("max_tokens"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "max_tokens": 1.5)").find("max_tokens"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "seed": 1.5)").find("seed"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "seed": 18446744073709551615)").find("seed"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "stop": 5)").find("stop"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "n": 2)").find("'n'"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "stream": "yes")").find("stream"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "top_logprobs": 3)").find("logprobs"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "logprobs": true, "top_logprobs": 21)").find("top_logprobs"), std::string::npos);
  EXPECT_EQ(chat_error(R"(, "temperature": 0, "top_p": 0)"), "");  // OpenAI's top_p 0: greedy
}

TEST(OpenAiRequest, MessagesAndPrompts) {
  auto refuse = [](const std::string& body, bool is_chat) {
    EXPECT_THROW(parse_generation_request(json::parse(body), is_chat, kLimits), ApiError) << body;
  };
  refuse(R"({"messages":[]})", true);
  refuse(R"({"messages":"hi"})", true);
  refuse(R"({"messages":[{"content":"no role"}]})", true);
  refuse(R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})", true);
  // A mistyped "type" is the client's 400 too, not a JSON library error (a 500).
  refuse(R"({"messages":[{"role":"user","content":[{"type":5,"text":"a"}]}]})", true);
  refuse(R"({"messages":[{"role":"user","content":"a"}],"tools":[{"type":7,"function":{"name":"f"}}]})", true);
  refuse(R"({"prompt": 5})", false);
  refuse(R"({"prompt": [1, 2, 1000]})", false);  // outside the vocabulary
  refuse(R"({"prompt": [1, -2]})", false);
  refuse(R"({"prompt": ["a", "b"]})", false);    // one prompt per request
  refuse(R"({})", false);
  refuse(R"([1, 2])", false);
  const GenerationRequest parts = parse_generation_request(
      json::parse(R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]})"), true, kLimits);
  EXPECT_EQ(parts.messages[0].content, "a\nb");
  const GenerationRequest ids = parse_generation_request(json::parse(R"({"prompt":[[1, 2, 3]], "logprobs": 2})"), false, kLimits);
  EXPECT_TRUE(ids.prompt_is_ids);
  EXPECT_EQ(ids.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(ids.options.top_logprobs, 2);
}

TEST(OpenAiRequest, BodiesThatAreNotJsonOrNestTooDeep) {
  EXPECT_THROW(parse_json_body("{"), ApiError);
  EXPECT_THROW(parse_json_body("{\"prompt\": \"\xff\xfe\"}"), ApiError);  // not UTF-8
  EXPECT_THROW(parse_json_body(std::string(100000, '[') + std::string(100000, ']')), ApiError);
  EXPECT_NO_THROW(parse_json_body(R"({"a":[[[1]]]})"));
}

TEST(OpenAiRequest, OutputConstraints) {
  EXPECT_EQ(chat("").options.grammar, nullptr);
  EXPECT_EQ(chat(R"(, "response_format":{"type":"text"})").options.grammar, nullptr);
  EXPECT_NE(chat(R"(, "response_format":{"type":"json_object"})").options.grammar, nullptr);
  EXPECT_NE(chat(R"(, "response_format":{"type":"json_schema","json_schema":{"name":"n","strict":true,"schema":{"type":"integer"}}})").options.grammar, nullptr);
  EXPECT_NE(chat(R"(, "grammar":"root ::= \"a\"\n")").options.grammar, nullptr);
  EXPECT_NE(chat(R"(, "json_schema":{"type":"boolean"})").options.grammar, nullptr);
  EXPECT_NE(chat_error(R"(, "grammar":"root ::= x\n")").find("rule 'x' is used but never defined"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "grammar":"root ::= \"a\"", "json_schema":{})").find("at most one"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "response_format":{"type":"json_schema"})").find("'schema'"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "response_format":{"type":"json_schema","json_schema":{"schema":{},"extra":1}})").find("json_schema.extra"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "response_format":{"type":"text","x":1})").find("response_format.x"), std::string::npos);
  EXPECT_NE(chat_error(R"(, "json_schema":{"type":"string","format":"email"})").find("json_schema: #/format"), std::string::npos);
}

TEST(ToolCalls, RecognizedInTheShapesModelsWrite) {
  const ToolRequest tools = parse_tool_request(json::parse(
      R"({"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},
                   {"type":"function","function":{"name":"get_time"}}]})"));
  EXPECT_EQ(tools.choice, ToolRequest::Choice::automatic);
  auto names = [&](std::string_view text) {
    std::string out;
    const auto calls = parse_tool_calls(text, tools);
    if (!calls) return std::string("none");
    for (const ToolCall& c : *calls) out += c.name + c.arguments + ";";
    return out;
  };
  EXPECT_EQ(names(R"( {"name": "get_weather", "arguments": {"city": "Paris"}} )"), R"(get_weather{"city":"Paris"};)");
  EXPECT_EQ(names(R"({"name": "get_time", "parameters": {}})"), "get_time{};");               // Llama 3.x
  EXPECT_EQ(names(R"(<|python_tag|>{"name": "get_time", "parameters": {"z": 1}})"), R"(get_time{"z":1};)");
  EXPECT_EQ(names(R"(<tool_call>{"name": "get_time", "arguments": {}}</tool_call>
<tool_call>{"name": "get_weather", "arguments": "{\"a\": 2}"}</tool_call>)"), R"(get_time{};get_weather{"a":2};)");
  EXPECT_EQ(names(R"([TOOL_CALLS][{"name": "get_time", "arguments": {}}])"), "get_time{};");  // Mistral
  EXPECT_EQ(names(R"([{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {}}])"), "get_time{};get_weather{};");
  EXPECT_EQ(names(R"({"name": "rm_rf", "arguments": {}})"), "none");        // not an offered tool
  ToolRequest single = tools;
  single.parallel = false;  // parallel_tool_calls false: two calls are not an answer it allows
  EXPECT_FALSE(parse_tool_calls(R"([{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {}}])", single));
  EXPECT_TRUE(parse_tool_calls(R"([{"name": "get_time", "arguments": {}}])", single));
  EXPECT_EQ(names(R"({"name": "get_time", "arguments": [1]})"), "none");    // arguments must be an object
  EXPECT_EQ(names(R"({"name": "get_time", "extra": 1})"), "none");
  EXPECT_EQ(names(R"(Sure! {"name": "get_time", "arguments": {}})"), "none");  // text around it: an answer
  EXPECT_EQ(names(R"(<tool_call>{"name": "get_time", "arguments": {}})"), "none");  // not closed
  EXPECT_EQ(names("The weather is fine."), "none");
  EXPECT_TRUE(may_become_tool_call("  "));
  EXPECT_TRUE(may_become_tool_call(" {\"na"));
  EXPECT_TRUE(may_become_tool_call("<tool_c"));
  EXPECT_TRUE(may_become_tool_call("[TOOL"));
  EXPECT_FALSE(may_become_tool_call("The"));
  EXPECT_FALSE(may_become_tool_call("<b>"));
}

TEST(ToolCalls, ChoiceAndTheForcedGrammar) {
  const json tools = json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}}},
                                     {"type":"function","function":{"name":"g"}}])");
  const ToolRequest named = parse_tool_request({{"tools", tools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "g"}}}}}});
  const auto g = Grammar::parse(forced_call_grammar(named));
  GrammarMatcher m(g);
  EXPECT_TRUE(m.accept(R"({"name": "g", "arguments": {}})") && m.can_end());
  EXPECT_FALSE(GrammarMatcher(g).accept(R"({"name": "f")"));
  const ToolRequest required = parse_tool_request({{"tools", tools}, {"tool_choice", "required"}});
  const auto any = Grammar::parse(forced_call_grammar(required));  // parallel by default: an array of calls
  GrammarMatcher a(any);
  EXPECT_TRUE(a.accept(R"([{"name": "f", "arguments": {"x": 3}}, {"name": "g", "arguments": {}}])") && a.can_end());
  EXPECT_FALSE(GrammarMatcher(any).accept(R"([{"name": "f", "arguments": {"x": "3"})"));
  EXPECT_EQ(parse_tool_request({{"tools", tools}, {"tool_choice", "none"}}).choice, ToolRequest::Choice::none);
  EXPECT_FALSE(parse_tool_request(json::object()).active());
  auto error_of = [](const json& body) {
    try {
      parse_tool_request(body);
    } catch (const ApiError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of({{"tools", json::array({{{"type", "function"}, {"function", {{"name", "f"}, {"strict", true}, {"x", 1}}}}})}}).find("function.x"), std::string::npos);
  EXPECT_NE(error_of({{"tools", json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}, {{"type", "function"}, {"function", {{"name", "f"}}}}})}}).find("twice"), std::string::npos);
  EXPECT_NE(error_of({{"tool_choice", "always"}}).find("tool_choice"), std::string::npos);
  EXPECT_NE(error_of({{"tools", tools}, {"parallel_tool_calls", 1}}).find("parallel_tool_calls"), std::string::npos);
}

}  // namespace
}  // namespace bitnet::server
