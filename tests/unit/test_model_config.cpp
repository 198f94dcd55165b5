// config.json / generation_config.json parsing: the 2B4T values, defaults, and refusals.
#include <bitnet/model_config.h>
#include <gtest/gtest.h>

#include "io_test_util.h"

namespace bitnet {
namespace {

// The released microsoft/bitnet-b1.58-2B-4T config (formats.md §1.1.1).
constexpr const char* k2B4T = R"({
  "architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "vocab_size": 128256, "hidden_size": 2560,
  "intermediate_size": 6912, "num_hidden_layers": 30, "num_attention_heads": 20, "num_key_value_heads": 5,
  "hidden_act": "relu2", "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
  "tie_word_embeddings": true, "attention_bias": false, "bos_token_id": 128000, "eos_token_id": 128001,
  "torch_dtype": "bfloat16", "rope_scaling": null,
  "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"}
})";

TEST(ModelConfig, Parses2B4T) {
  const ModelConfig c = parse_model_config(k2B4T);
  EXPECT_EQ(c.architectures, (std::vector<std::string>{"BitNetForCausalLM"}));
  EXPECT_EQ(c.model_type, "bitnet");
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 2560);
  EXPECT_EQ(c.intermediate_size, 6912);
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.num_attention_heads, 20);
  EXPECT_EQ(c.num_key_value_heads, 5);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.hidden_act, "relu2");
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(*c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001}));
  ASSERT_TRUE(c.quantization.has_value());
  EXPECT_EQ(c.quantization->scale_convention(), ScaleConvention::multiply);
  EXPECT_EQ(c.quantization->quantization_mode, "offline");
}

TEST(ModelConfig, DefaultsAndDivideConvention) {
  const ModelConfig c = parse_model_config(R"({"vocab_size": 32002, "hidden_size": 1536, "intermediate_size": 4096,
    "num_hidden_layers": 24, "num_attention_heads": 16, "eos_token_id": [2, 3],
    "quantization_config": {"quant_method": "bitnet"}})");
  EXPECT_EQ(c.num_key_value_heads, 16);
  EXPECT_EQ(c.head_dim, 96);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(c.quantization->scale_convention(), ScaleConvention::divide);
}

TEST(ModelConfig, RefusesWrongTypesAndImpossibleValues) {
  auto msg = [](const char* text) { return test::error_of([&] { parse_model_config(text, "cfg.json"); }); };
  const std::string base = R"("vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2)";
  EXPECT_NE(msg(("{" + base + R"(, "num_attention_heads": "8"})").c_str()).find("num_attention_heads"), std::string::npos);
  EXPECT_NE(msg(("{" + base + R"(, "num_attention_heads": 6})").c_str()).find("not divisible"), std::string::npos);
  EXPECT_NE(msg(("{" + base + R"(, "num_attention_heads": 8, "num_key_value_heads": 3})").c_str()).find("multiple"),
            std::string::npos);
  EXPECT_NE(msg(("{" + base + R"(, "num_attention_heads": 8, "eos_token_id": 100})").c_str()).find("vocab_size"),
            std::string::npos);
  EXPECT_NE(msg(("{" + base + R"(, "num_attention_heads": -8})").c_str()).find("out of range"), std::string::npos);
  EXPECT_NE(msg(R"({"vocab_size": 1, "vocab_size": 2})").find("hidden_size"), std::string::npos);  // not a duplicate error
  EXPECT_NE(msg("[1, 2]").find("expected an object"), std::string::npos);
  EXPECT_NE(msg("{\"a\": ").find("invalid JSON"), std::string::npos);
  EXPECT_NE(msg(("{" + base + R"(, "num_attention_heads": 8, "quantization_config": {"quant_method": "bitnet", "linear_class": "x"}})").c_str())
                .find("linear_class"), std::string::npos);
  EXPECT_NE(msg(std::string(100, '[').c_str()).find("deeper"), std::string::npos);
  EXPECT_NE(msg(("{" + base + "}").c_str()).find("num_attention_heads"), std::string::npos);
  EXPECT_NE(msg(("{" + base + "}").c_str()).find("cfg.json"), std::string::npos);
}

TEST(ModelConfig, GenerationConfig) {
  const GenerationConfig g = parse_generation_config(
      R"({"bos_token_id": 128000, "eos_token_id": [128001, 128009], "do_sample": true, "temperature": 0.6,
          "top_p": 0.9, "max_length": 4096, "transformers_version": "4.51"})");
  EXPECT_EQ(*g.bos_token_id, 128000);
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{128001, 128009}));
  EXPECT_TRUE(*g.do_sample);
  EXPECT_DOUBLE_EQ(*g.temperature, 0.6);
  EXPECT_DOUBLE_EQ(*g.top_p, 0.9);
  EXPECT_EQ(*g.max_length, 4096);
  EXPECT_FALSE(g.top_k.has_value());
  EXPECT_THROW(parse_generation_config(R"({"top_p": 1.5})"), Error);
  EXPECT_THROW(parse_generation_config(R"({"do_sample": 1})"), Error);
}

}  // namespace
}  // namespace bitnet
