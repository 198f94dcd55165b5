#pragma once
// A test suite's shared random BitNet model (2 layers, hidden 64, GQA 4:2) over GPT-2's real vocabulary from
// the shared test data; tests skip, saying why, when the vocabulary is absent. One instantiation per seed, so
// each suite that derives from it has its own model.
#include <bitnet/gguf.h>
#include <bitnet/model.h>
#include <bitnet/tokenizer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace bitnet::test {

template <uint64_t Seed>
class Gpt2TinyModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string vocab = std::string(BITNET_SHARED_DATA) + "/tokenizers/ggml-vocab-gpt-2.gguf";
    if (!std::filesystem::exists(vocab)) return;
    tokenizer_ = Tokenizer::from_gguf(GgufFile::open(vocab)).release();
    TransformerConfig c;
    c.arch = "bitnet-b1.58";
    c.vocab = tokenizer_->vocab_size();
    c.hidden = 64;
    c.ffn = 128;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = 2;
    c.head_dim = 16;
    c.context = 128;
    model_ = new Model(Model::random(c, Seed));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
    model_ = nullptr;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr) GTEST_SKIP() << "no GPT-2 vocabulary in " << BITNET_SHARED_DATA;
  }
  static inline Model* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
};

}  // namespace bitnet::test
