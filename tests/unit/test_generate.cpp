// The generation loop on a random model with a real vocabulary (GPT-2's, from the shared test data): budgets,
// stop strings, streaming, determinism.
#include <bitnet/generate.h>
#include <bitnet/gguf.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "gpt2_model_fixture.h"

namespace bitnet {
namespace {

TEST(Utf8Prefix, HoldsBackIncompleteCharacters) {
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("ab\xC3"), 2u);              // lead byte of a 2-byte character
  EXPECT_EQ(complete_utf8_prefix("ab\xC3\xA9"), 4u);          // é complete
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0u);        // 3 of 4 bytes of an emoji
  EXPECT_EQ(complete_utf8_prefix("x\xF0\x9F\x98\x80"), 5u);
  EXPECT_EQ(complete_utf8_prefix(""), 0u);
}

class Generation : public test::Gpt2TinyModelTest<11> {
 protected:
  static GenerateOptions greedy(int n) {
    GenerateOptions o;
    o.max_tokens = n;
    o.sampling.temperature = 0;
    return o;
  }
};

TEST_F(Generation, BudgetAndDeterminism) {
  Engine a(*model_, 64), b(*model_, 64);
  const GenerateResult r1 = generate(a, *tokenizer_, "Hello world", greedy(12));
  const GenerateResult r2 = generate(b, *tokenizer_, "Hello world", greedy(12));
  EXPECT_EQ(r1.tokens.size(), 12u);
  EXPECT_EQ(r1.finish_reason, "length");
  EXPECT_EQ(r1.tokens, r2.tokens);
  EXPECT_EQ(r1.text, tokenizer_->decode(r1.tokens, true));
  EXPECT_EQ(r1.prompt_tokens, static_cast<int>(tokenizer_->encode("Hello world", false, true).size()));
  // Seeded sampling repeats too.
  GenerateOptions s = greedy(10);
  s.sampling.temperature = 1.0f;
  s.sampling.seed = 99;
  EXPECT_EQ(generate(a, *tokenizer_, "Hello", s).tokens, generate(b, *tokenizer_, "Hello", s).tokens);
}

// A chat's second turn with the first turn in the cache: only the new tokens are evaluated, and the result is
// what a fresh engine gives for the whole text.
TEST_F(Generation, CachedPrefixIsReusedAndGivesTheSameTokens) {
  Engine warm(*model_, 128), cold(*model_, 128);
  std::vector<int32_t> cached;
  GenerateOptions o = greedy(6);
  o.cached = &cached;
  const GenerateResult first = generate(warm, *tokenizer_, "Hello world", o);
  EXPECT_EQ(first.reused_tokens, 0);
  EXPECT_EQ(cached.size(), static_cast<size_t>(first.prompt_tokens) + first.tokens.size() - 1);  // last one not fed
  const std::string second_prompt = "Hello world" + first.text + " and more";
  const GenerateResult second = generate(warm, *tokenizer_, second_prompt, o);
  EXPECT_GE(second.reused_tokens, first.prompt_tokens);
  EXPECT_LT(second.reused_tokens, second.prompt_tokens);
  const GenerateResult fresh = generate(cold, *tokenizer_, second_prompt, greedy(6));
  EXPECT_EQ(second.tokens, fresh.tokens);
  EXPECT_EQ(second.text, fresh.text);
  // The same prompt again: everything but its last token is reused.
  const GenerateResult again = generate(warm, *tokenizer_, second_prompt, o);
  EXPECT_EQ(again.reused_tokens, again.prompt_tokens - 1);
  EXPECT_EQ(again.tokens, fresh.tokens);
}

TEST_F(Generation, StopStringsEndTheTextBeforeThem) {
  Engine e(*model_, 96);
  const GenerateResult full = generate(e, *tokenizer_, "The", greedy(30));
  ASSERT_GE(full.text.size(), 8u);
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  const size_t first = full.text.find(stop);
  GenerateOptions o = greedy(30);
  o.stop = {"\x01never", stop};
  std::string streamed;
  const GenerateResult r = generate(e, *tokenizer_, "The", o, [&](std::string_view piece) {
    streamed.append(piece);
    return true;
  });
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.text, full.text.substr(0, first));
  EXPECT_EQ(streamed, r.text);  // the stream never showed the stop string
  // A callback returning false ends generation at once.
  int calls = 0;
  const GenerateResult cut = generate(e, *tokenizer_, "The", greedy(30), [&](std::string_view) { return ++calls < 2; });
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_LT(cut.tokens.size(), 30u);
  GenerateOptions empty_stop;
  empty_stop.stop = {""};
  EXPECT_THROW(generate(e, *tokenizer_, "The", empty_stop), Error);
}

}  // namespace
}  // namespace bitnet

namespace bitnet {
namespace {

// `bitnet run` end to end: a random model saved as GGUF with the GPT-2 vocabulary, run twice greedily.
TEST(RunCommand, GeneratesTheSameTextTwiceAndStopsAtTheBudget) {
  const std::string vocab = std::string(BITNET_SHARED_DATA) + "/tokenizers/ggml-vocab-gpt-2.gguf";
  if (!std::filesystem::exists(vocab)) GTEST_SKIP() << "no GPT-2 vocabulary in " << BITNET_SHARED_DATA;
  if (!std::filesystem::exists(BITNET_CLI)) GTEST_SKIP() << "the CLI is not built: " << BITNET_CLI;
  const GgufFile vocab_file = GgufFile::open(vocab);
  std::vector<std::pair<std::string, GgufValue>> tokenizer_keys;
  for (const auto& [key, value] : vocab_file.metadata())
    if (key.rfind("tokenizer.", 0) == 0) tokenizer_keys.emplace_back(key, value);
  TransformerConfig c;
  c.arch = "bitnet-b1.58";
  c.vocab = static_cast<int64_t>(vocab_file.at("tokenizer.ggml.tokens").count);
  c.hidden = 256;
  c.ffn = 256;
  c.layers = 1;
  c.heads = 4;
  c.kv_heads = 4;
  c.head_dim = 64;
  const std::string path = ::testing::TempDir() + "/bitnet_run_test.gguf";
  Model::random(c, 5).save_gguf(path, GgmlType::i2_s, tokenizer_keys);
  auto run = [&](const std::string& args) {
    const std::string cmd = std::string(BITNET_CLI) + " run -m " + path + " " + args + " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = pclose(p);
    EXPECT_EQ(status, 0) << cmd;
    return out;
  };
  const std::string a = run("-p 'Once upon a time' -n 8 --temp 0 -t 1");
  const std::string b = run("-p 'Once upon a time' -n 8 --temp 0 -t 2");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.rfind("Once upon a time", 0), 0u) << a;  // the prompt is echoed, then the continuation
  EXPECT_GT(a.size(), std::string("Once upon a time").size());
  if (!::testing::Test::HasFailure()) std::remove(path.c_str());
}

}  // namespace
}  // namespace bitnet

namespace bitnet {
namespace {

class ContextShift : public test::Gpt2TinyModelTest<12> {};

// With n_keep, a full context forgets half of what is not kept and generation goes on to its budget; without,
// it ends at the context. The cache record (options.cached) follows the shifts.
TEST_F(ContextShift, GenerationGoesOnPastTheContext) {
  GenerateOptions o;
  o.max_tokens = 100;
  o.ignore_eos = true;
  o.sampling.temperature = 0;
  o.sampling.repeat_penalty = 1.3f;
  Engine small(*model_, 48);
  const GenerateResult stopped = generate(small, *tokenizer_, "Hello world, this is a test", o);
  EXPECT_EQ(stopped.finish_reason, "length");
  EXPECT_LT(stopped.tokens.size(), 48u);
  EXPECT_EQ(stopped.context_shifts, 0);
  o.n_keep = 4;
  std::vector<int32_t> cached;
  o.cached = &cached;
  const GenerateResult shifted = generate(small, *tokenizer_, "Hello world, this is a test", o);
  EXPECT_EQ(shifted.tokens.size(), 100u);
  EXPECT_GE(shifted.context_shifts, 2);
  EXPECT_LT(cached.size(), 48u);
  const auto prompt = tokenizer_->encode("Hello world, this is a test", false, true);
  EXPECT_TRUE(std::equal(prompt.begin(), prompt.begin() + 4, cached.begin()));  // the kept tokens stay first
  // Until the first shift, the text is the unshifted one.
  EXPECT_TRUE(std::equal(stopped.tokens.begin(), stopped.tokens.end(), shifted.tokens.begin()));
  o.n_keep = 46;
  EXPECT_THROW(generate(small, *tokenizer_, "Hello", o), Error);  // nothing left to shift out
}

}  // namespace
}  // namespace bitnet
