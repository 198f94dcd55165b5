// Byte-level BPE training: the merges it learns on a text small enough to work out by hand, and the files it
// writes: tokenizer.json loaded by our Tokenizer and by Hugging Face `tokenizers` (the oracle) must give the same
// ids, and the GGUF keys must load to the same tokenizer.
#include <bitnet/bpe_train.h>
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/tokenizer.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "numpy_oracle.h"
#include "tokenizer_test_util.h"

namespace bitnet {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("bitnet_bpe_" + std::to_string(::getpid()) + "_" + name)).string();
}

// A corpus with repeated words, several scripts, digits, punctuation, newlines and runs of spaces.
std::string corpus() {
  std::string text;
  const char* lines[] = {
      "In the beginning God created the heaven and the earth.\n",
      "And the earth was without form, and void; and darkness was upon the face of the deep.\n",
      "Numbers 3:16 and 1234567 and 42, the answer.\n",
      "Ünïcödé wörds: naïve café, Straße, Москва и мир, 東京タワー, 🦙🦙 llamas!\n",
      "  indented   text\twith tabs\r\nand CRLF line ends\n",
      "it's we're they've I'm you'll he'd — quotes \"like this\" and (brackets).\n",
  };
  for (int i = 0; i < 40; ++i)
    for (const char* l : lines) text += l;
  return text;
}

TEST(BpeTrain, MergesMostFrequentPairFirstTiesBySmallerIds) {
  // Words: "ab" x1, " ab" x3, " cd" x2. Pairs: (a,b) 4, (' ',a) 3, (' ',c) 2, (c,d) 2.
  BpeTrainOptions o;
  o.vocab_size = 256 + 4 + 1;
  const BpeVocabulary v = train_bpe("ab ab ab ab cd cd", o);
  // After "a b": (' ',ab) 3; then the tie (' ',c) = (c,d) = 2 goes to the smaller ids (' ' = 32 < 'c').
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "Ġ ab", "Ġ c", "Ġc d"}));
  ASSERT_EQ(v.tokens.size(), 261u);
  EXPECT_EQ(v.tokens[256], "ab");
  EXPECT_EQ(v.tokens[257], "Ġab");
  EXPECT_EQ(v.tokens[259], "Ġcd");
  EXPECT_EQ(v.tokens[260], "<|endoftext|>");
  EXPECT_EQ(v.eos_id(), 260);
  EXPECT_EQ(v.tokens['A'], "A");
  EXPECT_EQ(v.tokens[' '], "Ġ");
}

TEST(BpeTrain, StopsWhenNoPairIsFrequentEnough) {
  BpeTrainOptions o;
  o.vocab_size = 1000;
  o.min_frequency = 3;
  const BpeVocabulary v = train_bpe("ab ab ab ab cd cd", o);
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "Ġ ab"}));
  EXPECT_EQ(v.tokens.size(), 256u + 2u + 1u);
  EXPECT_THROW(train_bpe("x", {.vocab_size = 200}), Error);
}

TEST(BpeTrain, TokenizerJsonMatchesHuggingFaceTokenizers) {
  BITNET_REQUIRE_ORACLE("tokenizers");
  const BpeVocabulary v = train_bpe(corpus(), {.vocab_size = 400});
  EXPECT_EQ(v.tokens.size(), 400u);
  const std::string path = temp_path("tokenizer.json");
  write_bpe_tokenizer_json(v, path);
  const auto tok = Tokenizer::from_hf(path);
  EXPECT_EQ(tok->vocab_size(), 400);
  EXPECT_EQ(tok->eos_id(), 399);

  const std::vector<std::string> texts = {
      corpus().substr(0, 2000),
      "In the beginning was the Word",
      "unseen: Zürich 2025-11-27, x^2+y^2=z^2; 🦙\n\n\n   end",
      "words that the training text never saw: quantization, ternary, BitNet",
      std::string("invalid \xff\xfe utf-8 \xe2\x82 bytes"),
      "text<|endoftext|>next document",
  };
  std::string packed;
  for (const std::string& t : texts) {
    const auto n = static_cast<uint32_t>(t.size());
    packed.append(reinterpret_cast<const char*>(&n), 4);
    packed += t;
  }
  std::istringstream hf(test::run_tokenizer_oracle("encode", path, packed));
  for (const std::string& t : texts) {
    std::string line;
    ASSERT_TRUE(std::getline(hf, line));
    // HF always splits out added tokens (even with add_special_tokens=False): our parse_special = true.
    const std::vector<int32_t> ours = tok->encode(t, /*add_bos=*/false, /*parse_special=*/true);
    EXPECT_EQ(ours, test::parse_ids(line)) << "text: " << t;
    if (t.find('\xff') == std::string::npos) {
      EXPECT_EQ(tok->decode(ours), t);
    }
  }
  // Merges compress: the training text takes far fewer tokens than bytes.
  EXPECT_LT(tok->encode(corpus(), false, false).size() * 2, corpus().size());

  const BpeVocabulary back = read_bpe_tokenizer_json(path);
  EXPECT_EQ(back.tokens, v.tokens);
  EXPECT_EQ(back.merges, v.merges);
  EXPECT_EQ(back.first_special, v.first_special);
  std::remove(path.c_str());
}

TEST(BpeTrain, GgufKeysLoadTheSameTokenizer) {
  const BpeVocabulary v = train_bpe(corpus(), {.vocab_size = 350});
  const std::string json_path = temp_path("t.json"), gguf_path = temp_path("t.gguf");
  write_bpe_tokenizer_json(v, json_path);
  {
    GgufWriter w;
    w.set("general.architecture", GgufValue::string("none"));
    for (auto& [k, val] : bpe_gguf_keys(v)) w.set(k, val);
    w.write_header(gguf_path);
    w.finish();
  }
  const auto from_json = Tokenizer::from_hf(json_path);
  const auto from_gguf = Tokenizer::from_gguf(GgufFile::open(gguf_path));
  EXPECT_EQ(from_gguf->vocab_size(), 350);
  EXPECT_EQ(from_gguf->eos_id(), 349);
  EXPECT_EQ(from_gguf->bos_id(), -1);
  EXPECT_FALSE(from_gguf->add_bos_default());
  const std::string text = corpus() + "plus text it never saw: Quagga 9981 ✓";
  EXPECT_EQ(from_gguf->encode(text, true, false), from_json->encode(text, true, false));
  std::remove(json_path.c_str());
  std::remove(gguf_path.c_str());
}

}  // namespace
}  // namespace bitnet
