// Chat templates rendered by the Jinja subset interpreter against Python jinja2 (configured as transformers'
// apply_chat_template): BitNet 2B4T, Llama-3 and Llama-2 templates plus a template that exercises the
// interpreter's whitespace rules, filters, tests and loop state. Known strings are checked without the oracle.
#include <bitnet/chat_template.h>
#include <bitnet/error.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>

#include "numpy_oracle.h"
#include "tokenizer_test_util.h"

namespace bitnet {
namespace {

std::string read_template(const std::string& name) {
  std::ifstream f(std::string(BITNET_TEST_DATA_DIR) + "/chat_templates/" + name, std::ios::binary);
  EXPECT_TRUE(f.good()) << name;
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

using Conversation = std::vector<ChatMessage>;

std::vector<Conversation> conversations() {
  return {
      {{"user", "Hey, are you conscious? Can you talk to me?"}},
      {{"system", "You are a helpful assistant."}, {"user", "  Hi there!\n"}, {"assistant", "Hello! How can I help?"},
       {"user", "Write `int main() {}` in C++ 🦙 and 中文"}},
      {{"user", "first"}, {"assistant", "  second  "}, {"user", "third\n\n"}},
      {{"system", "Only a system prompt, with\ttabs and\nnewlines"}, {"user", "   "}},
      {{"user", "\u3000ideographic space\u00a0and nbsp\u2003"}},
  };
}

TEST(ChatTemplate, BitNet2B4TPromptShape) {
  const ChatTemplate t(read_template("bitnet_2b4t.jinja"));
  const Conversation c = {{"user", "Hey, are you conscious? Can you talk to me?"}};
  const std::string expected = "<|begin_of_text|>User: Hey, are you conscious? Can you talk to me?<|eot_id|>Assistant: ";
  EXPECT_EQ(t.render(c, {"<|begin_of_text|>", "<|end_of_text|>", true}), expected);
  EXPECT_EQ(render_bitnet_chat(c, "<|begin_of_text|>", true), expected);
  const Conversation multi = {{"system", " Be brief. "}, {"user", "Hi"}, {"assistant", "Hello"}};
  EXPECT_EQ(t.render(multi, {"<|begin_of_text|>", "", false}),
            "<|begin_of_text|>System: Be brief.<|eot_id|>User: Hi<|eot_id|>Assistant: Hello<|eot_id|>");
  // The fallback and the template agree on every conversation of the suite.
  for (const auto& conv : conversations())
    for (bool gen : {true, false})
      EXPECT_EQ(render_bitnet_chat(conv, "<|begin_of_text|>", gen), t.render(conv, {"<|begin_of_text|>", "", gen}));
}

TEST(ChatTemplate, Llama3KnownString) {
  const ChatTemplate t(read_template("llama3.jinja"));
  const Conversation c = {{"system", "S"}, {"user", " U "}};
  EXPECT_EQ(t.render(c, {"<|begin_of_text|>", "<|eot_id|>", true}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

// Tools and tool calls reach the template as transformers passes them: `tools` the request's array, each call's
// arguments an object (so `| tojson` writes JSON once), content None for an assistant turn with only calls.
TEST(ChatTemplate, ToolsAndToolCalls) {
  const ChatTemplate t(
      "{% if tools %}TOOLS:{% for t in tools %}{{ t.function.name }};{% endfor %}\n{% endif %}"
      "{% for m in messages %}{{ m.role }}:"
      "{% if m.tool_calls %}{% for c in m.tool_calls %}CALL {{ c.function.name }} {{ c.function.arguments | tojson }}"
      " {{ c.arguments.city }}{% endfor %}{% endif %}"
      "{% if m.content is none %}<none>{% else %}{{ m.content }}{% endif %}"
      "{% if m.tool_call_id %} id={{ m.tool_call_id }}{% endif %}\n{% endfor %}");
  EXPECT_TRUE(t.renders_tools());
  EXPECT_FALSE(ChatTemplate("{{ messages[0].content }}").renders_tools());
  std::vector<ChatMessage> m{{"user", "Weather?"}, {"assistant", ""}, {"tool", "18C"}};
  m[1].tool_calls_json = R"([{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}])";
  m[1].content_is_null = true;
  m[2].tool_call_id = "c1";
  ChatTemplateOptions o;
  o.tools_json = R"([{"type":"function","function":{"name":"get_weather"}},{"type":"function","function":{"name":"get_time"}}])";
  EXPECT_EQ(t.render(m, o), "TOOLS:get_weather;get_time;user:Weather?"
                            "assistant:CALL get_weather {\"city\": \"Paris\"} Paris<none>tool:18C id=c1");  // trim_blocks
  m[1].tool_calls_json = "[not json";
  EXPECT_THROW(t.render(m, o), Error);
}

TEST(ChatTemplate, Llama2RaisesOnNonAlternatingRoles) {
  const ChatTemplate t(read_template("llama2.jinja"));
  const Conversation ok = {{"system", "S"}, {"user", "U"}, {"assistant", "A"}};
  EXPECT_EQ(t.render(ok, {"<s>", "</s>", false}), "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s>");
  const Conversation bad = {{"user", "U"}, {"user", "again"}};
  try {
    t.render(bad, {"<s>", "</s>", false});
    FAIL() << "expected raise_exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, UnsupportedSyntaxIsAnErrorWithLine) {
  try {
    ChatTemplate t("line one\n{% macro m() %}x{% endmacro %}");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChatTemplate("{% if x %}unclosed"), Error);
  EXPECT_THROW(ChatTemplate("{{ 'abc' "), Error);
  EXPECT_THROW(ChatTemplate("{{ x | no_such_filter }}").render({}, {}), Error);
}

TEST(ChatTemplate, MatchesPythonJinja2) {
  BITNET_REQUIRE_ORACLE("jinja2");
  const std::vector<std::string> names = {"bitnet_2b4t.jinja", "llama3.jinja", "llama2.jinja", "features.jinja"};
  nlohmann::json cases = nlohmann::json::array();
  struct Case {
    std::string name;
    Conversation conv;
    ChatTemplateOptions opt;
  };
  std::vector<Case> mine;
  for (const auto& name : names) {
    const std::string src = read_template(name);
    for (const auto& conv : conversations()) {
      for (bool gen : {true, false}) {
        const ChatTemplateOptions opt{"<|begin_of_text|>", "<|end_of_text|>", gen};
        nlohmann::json msgs = nlohmann::json::array();
        for (const auto& m : conv) msgs.push_back({{"role", m.role}, {"content", m.content}});
        cases.push_back({{"template", src}, {"messages", msgs}, {"add_generation_prompt", gen},
                         {"bos_token", opt.bos_token}, {"eos_token", opt.eos_token}});
        mine.push_back({name, conv, opt});
      }
    }
  }
  const auto out = nlohmann::json::parse(test::run_tokenizer_oracle("render", "-", cases.dump()));
  ASSERT_EQ(out.size(), mine.size());
  size_t matched = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    const std::string expected = out[i].get<std::string>();
    std::string got;
    try {
      got = ChatTemplate(read_template(mine[i].name)).render(mine[i].conv, mine[i].opt);
    } catch (const Error& e) {
      got = "EXCEPTION: " + std::string(e.what());
    }
    // A raise_exception() in the template: both sides raise, with the template's message.
    if (expected.rfind("EXCEPTION: ", 0) == 0) {
      EXPECT_EQ(got.rfind("EXCEPTION: ", 0), 0u) << mine[i].name << " case " << i;
      EXPECT_NE(got.find(expected.substr(11)), std::string::npos) << got;
      matched += got.find(expected.substr(11)) != std::string::npos;
      continue;
    }
    EXPECT_EQ(got, expected) << mine[i].name << " case " << i;
    matched += got == expected;
  }
  std::printf("[ oracle   ] chat templates vs jinja2: %zu/%zu renders match\n", matched, mine.size());
}

}  // namespace
}  // namespace bitnet
