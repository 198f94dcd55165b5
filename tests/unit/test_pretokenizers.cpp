// Every BPE pre-tokenizer llama.cpp names (tokenizer.ggml.pre): the table knows each name, compiles each regex,
// and splits text exactly as Hugging Face tokenizers does with the same regex list (the split llama.cpp's .out
// vectors were generated with), over llama.cpp's standard test inputs and a mixed corpus of edge cases.
#include <bitnet/gguf.h>
#include <bitnet/tokenizer.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "io_test_util.h"
#include "numpy_oracle.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer_test_util.h"

namespace bitnet {
namespace {

using tokenizer::find_pretokenizer;
using tokenizer::pretokenizer_names;

// The names issue #14 lists, and llama.cpp's most used ones: all must be supported.
TEST(PreTokenizers, TheNamesUsersMeetAreSupported) {
  for (const char* name :
       {"default", "llama3", "llama-bpe", "llama-v3", "falcon3", "gpt-2", "phi-2", "falcon", "deepseek-llm",
        "deepseek-coder", "deepseek-v3", "starcoder", "refact", "mpt", "qwen2", "qwen35", "command-r", "olmo", "dbrx",
        "smaug-bpe", "poro-chat", "jais", "tekken", "chatglm-bpe", "glm4", "viking", "bloom", "gpt3-finnish", "exaone",
        "chameleon", "minerva-7b", "gpt-4o", "llama4", "superbpe", "trillion", "bailingmoe", "seed-coder", "grok-2",
        "pixtral", "stablelm2", "smollm", "codeshell", "minimax-m2", "hunyuan", "exaone-moe", "tiny_aya"}) {
    const auto spec = find_pretokenizer(name);
    ASSERT_TRUE(spec.has_value()) << name;
    EXPECT_TRUE(spec->unsupported.empty()) << name << ": " << spec->unsupported;
    EXPECT_FALSE(spec->patterns.empty()) << name;
    EXPECT_NO_THROW(tokenizer::RegexSplitter{spec->patterns}) << name;
  }
  EXPECT_GE(pretokenizer_names().size(), 80u);
  EXPECT_TRUE(find_pretokenizer("llama3")->ignore_merges);
  EXPECT_TRUE(find_pretokenizer("tekken")->add_bos);
  // Names whose split is hand-written code in llama.cpp are known but refused with the reason.
  for (const char* name : {"kimi-k2", "afmoe", "gemma4"}) {
    const auto spec = find_pretokenizer(name);
    ASSERT_TRUE(spec.has_value()) << name;
    EXPECT_FALSE(spec->unsupported.empty()) << name;
  }
  EXPECT_FALSE(find_pretokenizer("no-such-tokenizer").has_value());
}

// A GGUF vocabulary with tokenizer.ggml.pre set to a name loads with that name's regexes (or fails naming it).
TEST(PreTokenizers, GgufLoaderTakesEveryNameAndRefusesUnknownOnes) {
  const std::string base = test::tokenizer_data_dir() + "/ggml-vocab-gpt-2.gguf";
  const GgufFile f = GgufFile::open(base);
  auto with_pre = [&](const std::string& pre) {
    GgufWriter w;
    for (const auto& [k, v] : f.metadata())
      if (k != "tokenizer.ggml.pre" && k != "general.alignment") w.set(k, v);
    w.set("tokenizer.ggml.pre", GgufValue::string(pre));
    const std::string path = testing::TempDir() + "/bitnet_pre_" + std::to_string(getpid()) + ".gguf";
    w.write_header(path);
    w.finish();
    return path;
  };
  for (const std::string& name : {std::string("falcon"), std::string("deepseek-coder"), std::string("qwen2"), std::string("tekken")}) {
    const std::string path = with_pre(name);
    const auto tok = Tokenizer::load(path);
    EXPECT_NE(tok->describe().find(name), std::string::npos) << tok->describe();
    EXPECT_FALSE(tok->encode("Hello world 12345", false, false).empty());
    std::remove(path.c_str());
  }
  const std::string path = with_pre("kimi-k2");
  const std::string msg = test::error_of([&] { Tokenizer::load(path); });
  EXPECT_NE(msg.find("kimi-k2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
  std::remove(path.c_str());
}

std::vector<std::string> split_corpus() {
  std::vector<std::string> texts = test::read_tokenizer_vectors("gpt-2").inputs;  // llama.cpp's standard inputs
  for (const char* s :
       {"CamelCaseWords and HTTPServer parseJSON", "numbers 1 12 123 1234 12345 1234567 3.14159 1,000,000",
        "工作1314151天 中文分词测试，包括标点。日本語のテキスト、カタカナ。", "한국어 문장입니다. ㄱㄴㄷ ㅏㅑ",
        "Khmer ភាសាខ្មែរ Thai ภาษาไทย Hindi हिन्दी", "Emoji 🚀🦙😶‍🌫️ ✅ 👩🏽‍💻 🇩🇪", "!~ ~!@#$%^&*()_+-=[]{}|;':\",./<>?`",
        "I'm sure they've GOT it, DON'T you? We'LL see; she'd say 'hello'.",
        "\n\n\n\t \t  \n   \n\r\n\r\r\n", "tabs\tin\t\tthe\t\t\tmiddle    and   spaces   ", "e\u0301 decomposed a\u0308",
        "Zero\u200bwidth\u200d joiner and NBSP\u00a0here and ideographic\u3000space", "…—–“quotes”‘single’ «guillemets»",
        "<sentinel:12> IMGIMGABCZ code:\tdef f(x): return x**2", "Ünïcödé àccents çedilla ñ ß ẞ ﬁ ligature ǅ ǈ"})
    texts.emplace_back(s);
  std::mt19937 rng(14);
  const std::vector<std::string> atoms = {"a", "Z", "é", "中", "한", "🦙", " ", "  ", "\n", "\t", "\r\n", "'s", "'LL",
                                          "3", "42", "1234", "!", "...", "_", "ß", "Hello", " world", "ＡＢ", "١",
                                          "\u00a0", "\u3000", "—", "$", "~", "|", "x\u0301", "ǅ"};
  for (int n = 0; n < 150; ++n) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < len; ++i) s += atoms[rng() % atoms.size()];
    texts.push_back(s);
  }
  return texts;
}

TEST(PreTokenizers, SplitLikeHuggingFaceTokenizers) {
  BITNET_REQUIRE_ORACLE("tokenizers");
  // One oracle call for every distinct regex list.
  std::map<std::vector<std::string>, std::vector<std::string>> names_of;
  for (const std::string& name : pretokenizer_names()) names_of[find_pretokenizer(name)->patterns].push_back(name);
  const std::vector<std::string> texts = split_corpus();
  nlohmann::json request = {{"pattern_sets", nlohmann::json::array()}, {"texts", texts}};
  for (const auto& [patterns, names] : names_of) request["pattern_sets"].push_back(patterns);
  const auto hf = nlohmann::json::parse(test::run_tokenizer_oracle("split", "-", request.dump()));
  ASSERT_EQ(hf.size(), names_of.size());
  size_t set = 0, checked = 0;
  for (const auto& [patterns, names] : names_of) {
    const tokenizer::RegexSplitter splitter(patterns);
    size_t mismatches = 0;
    for (size_t t = 0; t < texts.size(); ++t) {
      std::vector<std::string> ours;
      for (std::string_view piece : splitter.split(texts[t])) ours.emplace_back(piece);
      const auto want = hf[set][t].get<std::vector<std::string>>();
      if (ours != want && ++mismatches <= 2)
        ADD_FAILURE() << names.front() << " (" << names.size() << " names) splits \"" << texts[t]
                      << "\" differently from Hugging Face tokenizers: " << nlohmann::json(ours).dump() << " vs "
                      << nlohmann::json(want).dump();
      ++checked;
    }
    ++set;
  }
  std::printf("[ pre-tok  ] %zu regex lists (%zu names) x %zu texts split as Hugging Face tokenizers does\n",
              names_of.size(), pretokenizer_names().size(), texts.size());
  EXPECT_EQ(checked, names_of.size() * texts.size());
}

// llama.cpp's own test vectors (models/ggml-vocab-NAME.gguf with .inp/.out, generated by Hugging Face
// tokenizers), for every vocabulary a directory holds. They are not carried with the project (MBs of vocabulary
// files); point BITNET_LLAMA_VOCAB_DIR at llama.cpp's models/ to run them.
TEST(PreTokenizers, LlamaCppVocabularyVectorsWhenGiven) {
  const char* dir = std::getenv("BITNET_LLAMA_VOCAB_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set BITNET_LLAMA_VOCAB_DIR to llama.cpp's models/ to run its ggml-vocab-* vectors";
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string file = e.path().filename().string();
    if (!file.starts_with("ggml-vocab-") || !file.ends_with(".gguf")) continue;
    const std::string name = file.substr(11, file.size() - 16);
    const auto v = test::read_tokenizer_vectors(name, dir);
    if (v.inputs.empty()) continue;
    std::unique_ptr<Tokenizer> tok;
    try {
      tok = Tokenizer::load(e.path().string());
    } catch (const Error& err) {
      std::printf("[ vectors  ] %s: not loaded: %s\n", name.c_str(), err.what());
      continue;
    }
    size_t matched = 0;
    for (size_t i = 0; i < v.inputs.size() && i < v.expected.size(); ++i) {
      const auto ids = tok->encode(v.inputs[i], false, false);
      EXPECT_EQ(ids, v.expected[i]) << name << " input " << i << " \"" << v.inputs[i] << "\"";
      matched += ids == v.expected[i];
    }
    ++files;
    std::printf("[ vectors  ] %s (%s): %zu/%zu inputs match\n", name.c_str(), tok->describe().c_str(), matched,
                v.inputs.size());
  }
  EXPECT_GT(files, 0u) << "no ggml-vocab-*.gguf with .inp/.out in " << dir;
}

}  // namespace
}  // namespace bitnet
