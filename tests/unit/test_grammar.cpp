// GBNF grammars and JSON schemas: parsing (and its errors), matching text, the vocabulary mask against a
// token-by-token check, and generation on a random model whose every output must obey the grammar.
#include <bitnet/error.h>
#include <bitnet/generate.h>
#include <bitnet/grammar.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "gpt2_model_fixture.h"
#include "io_test_util.h"

namespace bitnet {
namespace {

bool full_match(const std::shared_ptr<const Grammar>& g, std::string_view text) {
  GrammarMatcher m(g);
  return m.accept(text) && m.can_end();
}

TEST(GrammarParse, LiteralsClassesGroupsAndRepetitions) {
  const auto g = Grammar::parse(R"(
# a comment
root  ::= "id-" digit{2,3} suffix? tail*   # trailing comment
digit ::= [0-9]
suffix ::= ( "x" | "y" )+
tail  ::= "." [^.\n]
)");
  EXPECT_TRUE(full_match(g, "id-12"));
  EXPECT_TRUE(full_match(g, "id-123xyx"));
  EXPECT_TRUE(full_match(g, "id-12.a.b"));
  EXPECT_FALSE(full_match(g, "id-1"));        // {2,3}: too few
  EXPECT_FALSE(full_match(g, "id-1234"));     // too many
  EXPECT_FALSE(full_match(g, "id-12.."));     // [^.\n] refuses '.'
  GrammarMatcher m(g);
  EXPECT_TRUE(m.accept("id-1"));
  EXPECT_FALSE(m.can_end());
  EXPECT_FALSE(m.accept("z"));  // refused, state kept
  EXPECT_TRUE(m.accept("2"));
  EXPECT_TRUE(m.can_end());
  EXPECT_FALSE(m.must_end());
}

TEST(GrammarParse, EscapesAnyCharAndMultiLineAlternatives) {
  const auto g = Grammar::parse("root ::= \"\\x41\\u00e9\\n\" . (\n  \"a\" |\n  \"b\"\n) \"\\\"\"\n");
  EXPECT_TRUE(full_match(g, "A\xC3\xA9\n\xE2\x82\xAC" "a\""));  // . matches the euro sign
  EXPECT_TRUE(full_match(g, "A\xC3\xA9\nzb\""));
  EXPECT_FALSE(full_match(g, "A\xC3\xA9\nzc\""));
}

TEST(GrammarParse, ErrorsNameThePlace) {
  auto error_of = [](std::string_view text) {
    try {
      Grammar::parse(text, "g.gbnf");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("item ::= \"a\"\n").find("no 'root' rule"), std::string::npos);
  EXPECT_NE(error_of("root ::= item\n").find("g.gbnf:1:10: rule 'item' is used but never defined"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"\nroot ::= \"b\"\n").find("g.gbnf:2:1: rule 'root' is defined twice"), std::string::npos);
  EXPECT_NE(error_of("root ::= root \"a\" | \"b\"\n").find("left-recursive"), std::string::npos);
  EXPECT_NE(error_of("root ::= x root\nx ::= \"a\"?\n").find("left-recursive"), std::string::npos);  // via a nullable rule
  EXPECT_NE(error_of("root ::= \"\\q\"\n").find("unknown escape"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"abc\n").find("g.gbnf:1:"), std::string::npos);
  EXPECT_NE(error_of("root ::= [a-\n").find("g.gbnf"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{3,2}\n").find("maximum below its minimum"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{99999}\n").find("at most"), std::string::npos);
  EXPECT_NE(error_of("root ::= <[123]>\n").find("token references"), std::string::npos);
  EXPECT_NE(error_of("root ::= [z-a]\n").find("reversed"), std::string::npos);
  EXPECT_NE(error_of("root = \"a\"\n").find("expected '::='"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\" )\n").find("expected the end of rule 'root'"), std::string::npos);
  EXPECT_NE(error_of("root ::= *\n").find("follows nothing"), std::string::npos);
  EXPECT_NE(error_of(std::string("root ::= \"\xFF\"\n")).find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(error_of("root ::= " + std::string(300, '(')).find("nest deeper"), std::string::npos);
  std::string many = "root ::= r0\n";  // 200 rules of 9,000 elements each: each fine, together too many
  for (int i = 0; i < 200; ++i) many += fmt::format("r{} ::= \"x\"{{9000}}\n", i);
  EXPECT_NE(error_of(many).find("more than"), std::string::npos);
}

TEST(GrammarMatch, CharactersSplitAcrossTokens) {
  const auto g = Grammar::parse("root ::= [\\u00e0-\\u00ff] \"!\"\n");
  GrammarMatcher m(g);
  EXPECT_TRUE(m.allows("\xC3"));      // could still become U+00C0..U+00FF
  EXPECT_FALSE(m.allows("\xC4"));     // U+0100.. never matches
  EXPECT_FALSE(m.allows("\xA9"));     // a continuation byte cannot start a character
  EXPECT_TRUE(m.accept("\xC3"));
  EXPECT_FALSE(m.can_end());
  EXPECT_FALSE(m.accept("\xA0\xA0"));  // U+00E0 then a stray continuation byte
  EXPECT_TRUE(m.accept("\xA9!"));
  EXPECT_TRUE(m.must_end());
  // Overlong forms are not characters: "\xC1\xBB" is not '{', and no completion of "\xC1" is a character.
  const auto brace = Grammar::parse("root ::= \"{\"\n");
  GrammarMatcher b(brace);
  EXPECT_FALSE(b.allows("\xC1"));
  EXPECT_FALSE(b.allows("\xE0\x81\xBB"));
  EXPECT_FALSE(GrammarMatcher(Grammar::parse("root ::= .\n")).allows("\xED\xA0\x80"));  // a surrogate
  EXPECT_TRUE(b.allows("{"));
}

// Rules that can match nothing, in a row, reach the same few stacks along 2^n paths: found by fuzz_grammar as a
// matcher that did not return. The work per character is bounded: an error naming the cause, at once.
TEST(GrammarMatch, ExponentiallyAmbiguousGrammarIsAnErrorNotAHang) {
  std::string rule = "root ::=";
  for (int i = 0; i < 40; ++i) rule += " a";
  const auto g = Grammar::parse(rule + " \"x\"\na ::= \"\" | \"y\" | \"\"\n");
  try {
    GrammarMatcher m(g);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too ambiguous"), std::string::npos) << e.what();
  }
  // Ten in a row are fine (a few thousand steps), and match as they should.
  rule = "root ::=";
  for (int i = 0; i < 10; ++i) rule += " a";
  GrammarMatcher ok(Grammar::parse(rule + " \"x\"\na ::= \"\" | \"y\"\n"));
  EXPECT_TRUE(ok.accept("yyyx"));
  EXPECT_TRUE(ok.must_end());
}

TEST(GrammarMatch, AnyJson) {
  const auto g = Grammar::any_json();
  EXPECT_TRUE(full_match(g, R"({"a": [1, -2.5e3, "x\u00e9\n", true, null, {}], "b": {"c": []}})"));
  EXPECT_TRUE(full_match(g, "{}"));
  EXPECT_FALSE(full_match(g, R"({a: 1})"));
  EXPECT_FALSE(full_match(g, R"({"a": 01})"));
  EXPECT_FALSE(full_match(g, R"([1])"));  // json_object: an object at the top
  EXPECT_FALSE(full_match(g, "{\"a\": \"tab\tinside\"}"));  // control characters must be escaped
}

const char* kPersonSchema = R"({
  "$defs": {"name": {"type": "string", "minLength": 1, "maxLength": 12}},
  "type": "object",
  "properties": {
    "name": {"$ref": "#/$defs/name"},
    "age": {"type": "integer", "minimum": 0},
    "email": {"type": ["string", "null"]},
    "born": {"type": "string", "format": "date"},
    "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "minItems": 1, "maxItems": 2},
    "kind": {"const": "person"},
    "child": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}
  },
  "required": ["name", "age"],
  "additionalProperties": false
})";

TEST(JsonSchema, AcceptsExactlyTheDocumentsOfTheSchema) {
  const auto g = Grammar::from_json_schema(kPersonSchema);
  EXPECT_TRUE(full_match(g, R"({"name": "Ann", "age": 31})"));
  EXPECT_TRUE(full_match(g, R"({"name":"Ann","age":0,"email":null,"tags":["a",3],"kind":"person"})"));
  EXPECT_TRUE(full_match(g, R"({"name": "Ann", "age": 3, "born": "2020-02-29", "child": {"name": "Bo", "age": 1}})"));
  EXPECT_TRUE(full_match(g, R"({"name": "Ann", "age": 3, "child": null})"));
  EXPECT_FALSE(full_match(g, R"({"age": 31})"));                           // name is required
  EXPECT_FALSE(full_match(g, R"({"name": "", "age": 31})"));               // minLength 1
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": -1})"));            // minimum 0
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": 1.5})"));           // an integer
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": 1, "tags": []})")); // minItems 1
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": 1, "tags": ["a", "b", "a"]})"));  // maxItems 2
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": 1, "tags": ["c"]})"));            // enum
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": 1, "kind": "cat"})"));            // const
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": 1, "x": 1})"));                  // no extra properties
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": 1, "born": "2020-13-01"})"));     // format date
  EXPECT_FALSE(full_match(g, R"({"name": "Ann", "age": 1,})"));                         // a dangling comma
  EXPECT_FALSE(full_match(g, R"({"age": 1, "name": "Ann"})"));  // properties come in the schema's order
}

TEST(JsonSchema, OptionalPropertiesOnlyAndExtraProperties) {
  const auto g = Grammar::from_json_schema(
      R"({"properties": {"a": {"type": "boolean"}, "b": {"type": "number"}}, "additionalProperties": {"type": "integer"}})");
  for (const char* ok : {"{}", R"({"b": 1.5})", R"({"a": true, "b": 2})", R"({"a": false, "zz": 4})", R"({"q": 1, "r": 2})"})
    EXPECT_TRUE(full_match(g, ok)) << ok;
  for (const char* bad : {R"({"b": 1, "a": true})", R"({"q": "s"})", R"({,})"}) EXPECT_FALSE(full_match(g, bad)) << bad;
  const auto tuple = Grammar::from_json_schema(R"({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false})");
  EXPECT_TRUE(full_match(tuple, R"(["x", 1])"));
  EXPECT_FALSE(full_match(tuple, R"(["x", 1, 2])"));
  const auto all = Grammar::from_json_schema(
      R"({"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": {"type": "null"}}}]})");
  EXPECT_TRUE(full_match(all, R"({"a": 1, "b": null})"));
  EXPECT_FALSE(full_match(all, R"({"b": null})"));
}

TEST(JsonSchema, WhatCannotBeEnforcedIsAnErrorNamingIt) {
  auto error_of = [](std::string_view schema) {
    try {
      json_schema_to_gbnf(schema, "schema.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"properties": {"name": {"type": "string", "pattern": "^a"}}})")
                .find("schema.json: #/properties/name/pattern: the keyword 'pattern' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type": "number", "maximum": 3})").find("#/maximum"), std::string::npos);
  EXPECT_NE(error_of(R"({"type": "integer", "minimum": 5})").find("#/minimum"), std::string::npos);
  EXPECT_NE(error_of(R"({"type": "string", "format": "email"})").find("format \"email\""), std::string::npos);
  EXPECT_NE(error_of(R"({"$ref": "https://example.com/s.json"})").find("#/$ref"), std::string::npos);
  EXPECT_NE(error_of(R"({"$ref": "#/$defs/missing"})").find("does not exist"), std::string::npos);
  EXPECT_NE(error_of(R"({"type": "object", "required": ["x"]})").find("\"x\" is required but not among"), std::string::npos);
  EXPECT_NE(error_of(R"({"type": "strin"})").find("unknown type \"strin\""), std::string::npos);
  EXPECT_NE(error_of("false").find("accepts no value"), std::string::npos);
  EXPECT_NE(error_of("{nope").find("not valid JSON"), std::string::npos);
  std::string deep = "{}";
  for (int i = 0; i < 100; ++i) deep = R"({"type": "array", "items": )" + deep + "}";
  EXPECT_NE(error_of(deep).find("nests deeper"), std::string::npos);
}

class GrammarTokens : public test::Gpt2TinyModelTest<23> {};

// The trie walk gives, for every state tried, exactly what checking each token's text one by one gives.
TEST_F(GrammarTokens, TrieMaskEqualsTokenByTokenCheck) {
  const auto g = Grammar::from_json_schema(kPersonSchema);
  for (const char* prefix : {"", "{", "{\"name\": \"A", "{\"name\": \"Ann\", \"age\": 4", "{\"name\": \"\xC3"}) {
    GrammarMatcher m(g);
    ASSERT_TRUE(m.accept(prefix)) << prefix;
    std::vector<uint8_t> mask;
    m.allowed_tokens(*tokenizer_, mask);
    ASSERT_EQ(mask.size(), static_cast<size_t>(tokenizer_->vocab_size()));
    size_t allowed = 0;
    for (int32_t id = 0; id < tokenizer_->vocab_size(); ++id) {
      const bool expect = m.allows_token(*tokenizer_, id);
      ASSERT_EQ(mask[static_cast<size_t>(id)] != 0, expect) << "prefix " << prefix << " token " << id;
      allowed += expect;
    }
    EXPECT_GT(allowed, 0u) << prefix;
    EXPECT_LT(allowed, static_cast<size_t>(tokenizer_->vocab_size())) << prefix;
  }
}

// A random model writes garbage; under the grammar the garbage is always a document of the schema.
TEST_F(GrammarTokens, GenerationObeysTheSchema) {
  const auto g = Grammar::from_json_schema(
      R"({"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}, "s": {"type": "string", "maxLength": 6}}, "required": ["ok", "n", "s"]})");
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    Engine engine(*model_, 128);
    GenerateOptions o;
    o.max_tokens = 100;
    o.sampling.seed = seed;
    o.sampling.temperature = 1.5f;
    o.sampling.top_k = 0;
    o.sampling.top_p = 1;
    o.sampling.min_p = 0;
    o.grammar = g;
    const GenerateResult r = generate(engine, *tokenizer_, "Hello", o);
    if (r.finish_reason == "length") continue;  // the budget ran out inside the document
    const auto doc = nlohmann::json::parse(r.text);  // throws (fails the test) when not JSON
    EXPECT_TRUE(doc["ok"].is_boolean()) << r.text;
    EXPECT_TRUE(doc["n"].is_number_integer()) << r.text;
    EXPECT_LE(doc["s"].get<std::string>().size(), 6u * 4) << r.text;
    EXPECT_TRUE(full_match(g, r.text)) << r.text;
  }
  // Greedy decoding under a small grammar ends exactly at its end.
  Engine engine(*model_, 128);
  GenerateOptions o;
  o.max_tokens = 40;
  o.sampling.temperature = 0;
  o.grammar = Grammar::parse("root ::= (\"yes\" | \"no\") \".\"\n");
  const GenerateResult r = generate(engine, *tokenizer_, "Question", o);
  EXPECT_TRUE(r.text == "yes." || r.text == "no.") << r.text;
  EXPECT_EQ(r.finish_reason, "stop");
}

TEST_F(GrammarTokens, LogitBiasAndIgnoreEos) {
  Engine engine(*model_, 128);
  GenerateOptions o;
  o.max_tokens = 8;
  o.sampling.temperature = 0;
  const int32_t forced = tokenizer_->encode(" banana", false, false).at(0);
  o.sampling.logit_bias = {{forced, 100.0f}};
  const GenerateResult r = generate(engine, *tokenizer_, "Hello", o);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(8, forced));
  // A ban: the greedy choice of the unbiased run never appears.
  o.sampling.logit_bias.clear();
  const GenerateResult plain = generate(engine, *tokenizer_, "Hello", o);
  o.sampling.logit_bias = {{plain.tokens.at(0), -std::numeric_limits<float>::infinity()}};
  const GenerateResult banned = generate(engine, *tokenizer_, "Hello", o);
  for (const int32_t t : banned.tokens) EXPECT_NE(t, plain.tokens.at(0));
  o.sampling.logit_bias = {{tokenizer_->vocab_size(), 1.0f}};
  EXPECT_THROW(generate(engine, *tokenizer_, "Hello", o), Error);
  // --ignore-eos: EOS is made the only likely token and still never comes.
  o.sampling.logit_bias = {{tokenizer_->eos_id(), 100.0f}};
  o.ignore_eos = true;
  const GenerateResult all = generate(engine, *tokenizer_, "Hello", o);
  EXPECT_EQ(all.tokens.size(), 8u);
  EXPECT_EQ(all.finish_reason, "length");
  o.ignore_eos = false;
  EXPECT_EQ(generate(engine, *tokenizer_, "Hello", o).tokens.size(), 0u);
}

}  // namespace
}  // namespace bitnet
