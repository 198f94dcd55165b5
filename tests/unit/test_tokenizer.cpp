// Tokenizers against the llama.cpp / Hugging Face test vectors (../shared/data/tokenizers): GPT-2 byte-level BPE
// and Llama-2 SentencePiece from their GGUF vocabularies; round trips, streaming decode, invalid UTF-8.
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/tokenizer.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace bitnet {
namespace {

using test::read_tokenizer_vectors;

const Tokenizer* vocab_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[name];
  if (!t) {
    const std::string path = test::tokenizer_data_dir() + "/ggml-vocab-" + name + ".gguf";
    if (!std::filesystem::exists(path)) return nullptr;
    t = Tokenizer::load(path);
  }
  return t.get();
}

#define REQUIRE_VOCAB(var, name)                                                          \
  const Tokenizer* var = vocab_tokenizer(name);                                           \
  if (!var) GTEST_SKIP() << "test vocabulary ggml-vocab-" name ".gguf not found in " << \
                         test::tokenizer_data_dir()

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

// Every input of the vector file must give exactly the expected ids; returns how many did.
void expect_vectors(const Tokenizer& tok, const std::string& name) {
  const auto v = read_tokenizer_vectors(name);
  ASSERT_EQ(v.inputs.size(), 46u) << name;
  ASSERT_EQ(v.expected.size(), v.inputs.size()) << name;
  size_t matched = 0;
  for (size_t i = 0; i < v.inputs.size(); ++i) {
    const auto ids = tok.encode(v.inputs[i], /*add_bos=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, v.expected[i]) << name << " input " << i << " \"" << v.inputs[i] << "\"\n got:     " << ids_str(ids)
                                  << "\n expected:" << ids_str(v.expected[i]);
    matched += ids == v.expected[i];
  }
  std::printf("[ vectors  ] %s: %zu/%zu inputs match\n", name.c_str(), matched, v.inputs.size());
}

void expect_round_trips(const Tokenizer& tok, const std::string& name) {
  for (const auto& text : read_tokenizer_vectors(name).inputs) {
    const auto ids = tok.encode(text, false, false);
    EXPECT_EQ(tok.decode(ids), text) << name;
    // Streaming gives the same text, and every chunk is whole UTF-8.
    TokenStreamDecoder stream(tok);
    std::string joined;
    for (int32_t id : ids) {
      const std::string chunk = stream.push(id);
      EXPECT_EQ(utf8_sanitize(chunk), chunk);
      joined += chunk;
    }
    joined += stream.flush();
    EXPECT_EQ(joined, text) << name;
  }
}

TEST(Utf8, MaximalSubpartReplacementAsPython) {
  // Expected strings are Python's bytes.decode("utf-8", errors="replace").
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_sanitize("abc"), "abc");
  EXPECT_EQ(utf8_sanitize("\xFF"), r);
  EXPECT_EQ(utf8_sanitize("a\xE2\x82"), "a" + r);             // truncated 3-byte sequence: one replacement
  EXPECT_EQ(utf8_sanitize("\xE2\x82" "a"), r + "a");
  EXPECT_EQ(utf8_sanitize("\xED\xA0\x80"), r + r + r);         // surrogate: ED then two lone continuations
  EXPECT_EQ(utf8_sanitize("\xF0\x9F\x98\xB6"), "\xF0\x9F\x98\xB6");
  EXPECT_EQ(utf8_sanitize("\xF0\x9F\x98" "x"), r + "x");
  EXPECT_EQ(utf8_sanitize("\xC0\xAF"), r + r);                 // overlong
  EXPECT_EQ(utf8_sanitize("\xF4\x90\x80\x80"), r + r + r + r); // above U+10FFFF
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xFF"), 3u);
  EXPECT_EQ(utf8_complete_prefix("ab\xC3\xA9"), 4u);
}

TEST(ByteLevelMap, Gpt2Table) {
  using tokenizer::byte_to_cp;
  EXPECT_EQ(byte_to_cp()[' '], 0x120u);
  EXPECT_EQ(byte_to_cp()['\n'], 0x10Au);
  EXPECT_EQ(byte_to_cp()['A'], uint32_t('A'));
  EXPECT_EQ(byte_to_cp()[0xAD], 0x143u);  // the last moved byte: 0x100 + 67
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tokenizer::byte_from_cp(byte_to_cp()[b]), b);
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string back;
  ASSERT_TRUE(tokenizer::bpe_text_to_bytes(tokenizer::bytes_to_bpe_text(all), back));
  EXPECT_EQ(back, all);
}

TEST(TokenizerGpt2, VectorsMatchExactly) {
  REQUIRE_VOCAB(tok, "gpt-2");
  EXPECT_EQ(tok->kind(), TokenizerKind::bpe);
  EXPECT_EQ(tok->vocab_size(), 50257);
  expect_vectors(*tok, "gpt-2");
}

TEST(TokenizerGpt2, RoundTrips) {
  REQUIRE_VOCAB(tok, "gpt-2");
  expect_round_trips(*tok, "gpt-2");
}

TEST(TokenizerGpt2, SpecialTokensOnlyWhenParsed) {
  REQUIRE_VOCAB(tok, "gpt-2");
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_TRUE(tok->is_eog(50256));
  EXPECT_FALSE(tok->is_eog(0));
  const auto parsed = tok->encode("Hi<|endoftext|>", false, true);
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[1], 50256);
  const auto plain = tok->encode("Hi<|endoftext|>", false, false);
  EXPECT_GT(plain.size(), 3u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(tok->decode(plain), "Hi<|endoftext|>");
  EXPECT_EQ(tok->decode(parsed, /*skip_special=*/true), "Hi");
  EXPECT_THROW(tok->token_to_piece(50257), Error);
  EXPECT_THROW(tok->decode(std::vector<int32_t>{-1}), Error);
}

TEST(TokenizerGpt2, InvalidUtf8IsReplacedNotFatal) {
  REQUIRE_VOCAB(tok, "gpt-2");
  EXPECT_EQ(tok->encode("a\xFF" "b", false, false), tok->encode("a\xEF\xBF\xBD" "b", false, false));
  std::mt19937 rng(7);
  for (int n = 0; n < 200; ++n) {
    std::string s(rng() % 40, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    const auto ids = tok->encode(s, false, false);
    EXPECT_EQ(tok->decode(ids), utf8_sanitize(s));
  }
}

TEST(TokenizerSpm, VectorsMatchExactly) {
  REQUIRE_VOCAB(tok, "llama-spm");
  EXPECT_EQ(tok->kind(), TokenizerKind::spm);
  EXPECT_EQ(tok->vocab_size(), 32000);
  expect_vectors(*tok, "llama-spm");
}

TEST(TokenizerSpm, RoundTrips) {
  REQUIRE_VOCAB(tok, "llama-spm");
  expect_round_trips(*tok, "llama-spm");
}

TEST(TokenizerSpm, BosSpecialsAndByteFallback) {
  REQUIRE_VOCAB(tok, "llama-spm");
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->add_bos_default());
  EXPECT_TRUE(tok->is_eog(2));
  EXPECT_EQ(tok->encode("Hello", true, false), (std::vector<int32_t>{1, 15043}));
  // A control token in the text: a space prefix again after it, as llama.cpp does.
  EXPECT_EQ(tok->encode("Hello</s>Hello", false, true), (std::vector<int32_t>{15043, 2, 15043}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 15043, 2, 15043}), "<s>Hello</s>Hello");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 15043, 2, 15043}, true), "HelloHello");
  // U+1F999 has no piece: four byte tokens <0xF0><0x9F><0xA6><0x99> = ids 243 162 169 156.
  const auto ids = tok->encode("\xF0\x9F\xA6\x99", false, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{29871, 243, 162, 169, 156}));
  EXPECT_EQ(tok->token_to_piece(243), "\xF0");
  TokenStreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(29871), "");  // the prefix space, dropped at the start
  EXPECT_EQ(stream.push(243), "");
  EXPECT_EQ(stream.push(162), "");
  EXPECT_EQ(stream.push(169), "");
  EXPECT_EQ(stream.push(156), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(stream.push(243), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");  // an unfinished character at the end
}

TEST(TokenizerSpm, InvalidUtf8IsReplacedNotFatal) {
  REQUIRE_VOCAB(tok, "llama-spm");
  std::mt19937 rng(11);
  for (int n = 0; n < 200; ++n) {
    std::string s(rng() % 40, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    const auto ids = tok->encode(s, false, false);
    EXPECT_EQ(tok->decode(ids), utf8_sanitize(s));
  }
}

TEST(TokenizerLoad, ErrorsNameTheFile) {
  try {
    Tokenizer::load("/nonexistent/dir/tokenizer.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tokenizer.json"), std::string::npos) << e.what();
  }
  // A GGUF without tokenizer keys.
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  const std::string path = testing::TempDir() + "/bitnet_no_tokenizer_" + std::to_string(getpid()) + ".gguf";
  w.write_header(path);
  w.finish();
  try {
    Tokenizer::load(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.model"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

// A SentencePiece byte token must be "<0x" two hex digits ">": "<0x-B>" once parsed as byte 0xFFFFFFF5 and wrote
// far outside the 256-entry byte table (found by fuzz_gguf_tokenizer). Such a token is an ordinary piece.
TEST(TokenizerLoad, SpmByteTokenThatIsNotHexIsNotAByte) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("tokenizer.ggml.model", GgufValue::string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array({"<unk>", "<s>", "</s>", "<0x-B>", "<0x41>", "\xE2\x96\x81"}));
  const std::vector<int32_t> types = {2, 3, 3, 6, 6, 1};
  const std::vector<float> scores = {0, 0, 0, 0, 0, -1};
  w.set("tokenizer.ggml.token_type", GgufValue::scalar_array<int32_t>(GgufValueType::i32, types));
  w.set("tokenizer.ggml.scores", GgufValue::scalar_array<float>(GgufValueType::f32, scores));
  const std::string path = testing::TempDir() + "/bitnet_spm_bytes_" + std::to_string(getpid()) + ".gguf";
  w.write_header(path);
  w.finish();
  const auto tok = Tokenizer::load(path);
  EXPECT_EQ(tok->encode("A", false, false), (std::vector<int32_t>{5, 4}));  // the space piece, then byte 0x41
  std::filesystem::remove(path);
}

// Fields of the wrong JSON type are errors naming the file and the field (found by fuzz_tokenizer_json: a
// post_processor "type" that was a list escaped as nlohmann's type_error).
TEST(TokenizerLoad, MistypedFieldsNameTheFileAndField) {
  const std::string path = testing::TempDir() + "/bitnet_mistyped_" + std::to_string(getpid()) + ".json";
  const std::string head = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},)";
  const std::pair<std::string, std::string> cases[] = {
      {R"("pre_tokenizer": {"type": "ByteLevel"}, "post_processor": {"type": ["TemplateProcessing"]}})",
       "post_processor: \"type\" must be a string"},
      {R"("pre_tokenizer": {"type": "ByteLevel", "use_regex": "yes"}})", "pre_tokenizer: \"use_regex\" must be true"},
      {R"("pre_tokenizer": {"type": 3}})", "pre_tokenizer: \"type\" must be a string"},
      {R"("pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": [{"id": 2, "content": "<s>", "special": 1}]})",
       "added_tokens entry: \"special\" must be true"},
  };
  for (const auto& [tail, expected] : cases) {
    {
      std::ofstream out(path);
      out << head << tail;
    }
    try {
      Tokenizer::load(path);
      ADD_FAILURE() << "expected an error for " << tail;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      EXPECT_NE(what.find(expected), std::string::npos) << what;
    }
  }
  std::filesystem::remove(path);
}

// A tokenizer.json of a few bytes whose one id is near 2^30 would otherwise allocate 2^30 token slots.
TEST(TokenizerLoad, SparseIdsInTokenizerJsonAreAnErrorNotAnAllocation) {
  const std::string path = testing::TempDir() + "/bitnet_sparse_" + std::to_string(getpid()) + ".json";
  {
    std::ofstream out(path);
    out << R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1073741000}, "merges": []},
               "pre_tokenizer": {"type": "ByteLevel"}})";
  }
  try {
    Tokenizer::load(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("1073741000"), std::string::npos) << what;
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace bitnet
