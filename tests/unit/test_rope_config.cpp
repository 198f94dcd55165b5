// Real checkpoints' config layouts (transformers 4.x and 5.x, published files' quirks), RoPE variants against
// transformers' own formulas, RoPE scaling through GGUF, and quantization that follows the checkpoint.
#include <bitnet/engine.h>
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/model.h>
#include <bitnet/model_config.h>
#include <bitnet/model_files.h>
#include <bitnet/rope.h>
#include <bitnet/rope_gguf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io_test_util.h"

namespace bitnet {
namespace {

namespace fs = std::filesystem;
const std::string kGolden = std::string(BITNET_GOLDEN_DIR) + "/hf";
constexpr const char* kShape =
    R"("vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4)";

ModelConfig parse(const std::string& extra, const std::string& model_type = "llama") {
  return parse_model_config("{" + std::string(kShape) + R"(, "model_type": ")" + model_type + "\"" + extra + "}", "c.json");
}
std::string error_of_config(const std::string& extra) {
  return test::error_of([&] { parse(extra); });
}

TEST(RopeConfig, EveryKeyLayoutGivesTheSameParameters) {
  // 4.x: top-level rope_theta + rope_scaling; 5.x: rope_parameters holding rope_theta; the legacy "type" key.
  const ModelConfig v4 = parse(R"(, "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  const ModelConfig v5 = parse(R"(, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  const ModelConfig legacy = parse(R"(, "rope_theta": 500000.0, "rope_scaling": {"type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  for (const ModelConfig* c : {&v4, &v5, &legacy}) {
    EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
    EXPECT_EQ(c->rope_scaling.type, RopeType::llama3);
    EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
    EXPECT_EQ(c->rope_scaling.original_context, 8192);
    EXPECT_TRUE(c->warnings.empty());
  }
  // No silent 10000: a theta only inside rope_parameters is read, and the class default depends on the model.
  EXPECT_DOUBLE_EQ(parse(R"(, "rope_parameters": {"rope_type": "default", "rope_theta": 123.0})").rope_theta, 123.0);
  EXPECT_DOUBLE_EQ(parse("", "bitnet").rope_theta, 500000.0);  // BitNetConfig.default_theta
  EXPECT_DOUBLE_EQ(parse("", "llama").rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(parse("", "bitnet").rms_norm_eps, 1e-5);
  // yarn and llama3 without an original length take max_position_embeddings, as transformers does.
  EXPECT_EQ(parse(R"(, "max_position_embeddings": 77, "rope_scaling": {"rope_type": "yarn", "factor": 2.0})")
                .rope_scaling.original_context, 77);
  // rope_scaling and rope_parameters may both be present (5.x re-saves) but must agree.
  EXPECT_EQ(parse(R"(, "rope_scaling": {"rope_type": "linear", "factor": 2.0},
      "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})").rope_scaling.type, RopeType::linear);
  EXPECT_NE(error_of_config(R"(, "rope_scaling": {"rope_type": "linear", "factor": 2.0},
      "rope_parameters": {"rope_type": "linear", "factor": 4.0})").find("disagree"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "rope_theta": 10.0, "rope_parameters": {"rope_type": "default", "rope_theta": 20.0})")
                .find("rope_theta"), std::string::npos);
}

TEST(RopeConfig, WhatChangesTheMathIsNeverIgnored) {
  EXPECT_NE(error_of_config(R"(, "rope_scaling": {"rope_type": "longrope", "factor": 2.0})").find("longrope"),
            std::string::npos);
  EXPECT_NE(error_of_config(R"(, "rope_scaling": {"rope_type": "linear"})").find("factor"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "rope_scaling": {"rope_type": "linear", "factor": 2.0, "beta_fast": 3})")
                .find("beta_fast"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0})").find("low_freq_factor"),
            std::string::npos);
  EXPECT_NE(error_of_config(R"(, "partial_rotary_factor": 0.5)").find("partial_rotary_factor"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "attention_bias": true)").find("attention_bias"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "mlp_bias": true)").find("mlp_bias"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "sliding_window": 4096)").find("sliding_window"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "head_dim": 7)").find("odd"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "weight_bits": 2)").find("weight_bits"), std::string::npos);
  EXPECT_NE(error_of_config(R"(, "quantization_config": {"quant_method": "gptq"})").find("gptq"), std::string::npos);
  // Harmless values of those keys, and keys known to be inert, pass silently; unknown keys are warned about.
  const ModelConfig ok = parse(R"(, "attention_bias": false, "mlp_bias": false, "sliding_window": null,
      "partial_rotary_factor": 1.0, "pretraining_tp": 1, "use_cache": true, "weight_bits": 1, "input_bits": 8)");
  EXPECT_TRUE(ok.warnings.empty());
  const ModelConfig odd = parse(R"(, "frobnication_scale": 3.5)");
  ASSERT_EQ(odd.warnings.size(), 1u);
  EXPECT_NE(odd.warnings[0].find("frobnication_scale"), std::string::npos);
}

TEST(RopeConfig, PublishedQuirks) {
  // HF1BitLLM/Llama3-8B-1.58 writes quantization_config twice; Python's json (and transformers) keeps the last.
  const ModelConfig c = parse_model_config("{" + std::string(kShape) + R"(,
      "quantization_config": {"modules_to_not_convert": null, "quant_method": "bitnet"},
      "rope_scaling": null, "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear"}})");
  ASSERT_TRUE(c.quantization.has_value());
  EXPECT_EQ(c.quantization->linear_class, "autobitlinear");
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("more than once"), std::string::npos);
  // Falcon3: a list of eos ids, an explicit head_dim.
  const ModelConfig f = parse(R"(, "eos_token_id": [2, 11], "head_dim": 32)");
  EXPECT_EQ(f.eos_token_ids, (std::vector<int64_t>{2, 11}));
  EXPECT_EQ(f.head_dim, 32);
  // 1bitLLM: model_type llama, architectures BitnetForCausalLM, weight_bits / input_bits.
  const ModelConfig b = parse(R"(, "architectures": ["BitnetForCausalLM"], "weight_bits": 1, "input_bits": 8)");
  EXPECT_TRUE(b.warnings.empty());
}

// transformers' formulas evaluated here in double, independently of rope.cpp's float32 steps.
TEST(Rope, FrequenciesFollowTransformersFormulas) {
  const int64_t d = 64;
  const double theta = 500000.0;
  auto base = [&](int64_t i) { return 1.0 / std::pow(theta, 2.0 * static_cast<double>(i) / d); };
  RopeScaling s;
  const RopeFrequencies plain = rope_frequencies(s, theta, d, 4096);
  for (int64_t i = 0; i < d / 2; ++i) EXPECT_NEAR(plain.inv_freq[size_t(i)] / base(i), 1.0, 1e-6) << i;
  s.type = RopeType::linear;
  s.factor = 4.0;
  for (int64_t i = 0; i < d / 2; ++i)
    EXPECT_NEAR(rope_frequencies(s, theta, d, 4096).inv_freq[size_t(i)] / (base(i) / 4.0), 1.0, 1e-6);
  // llama3: wavelengths above original/low are divided by factor, below original/high kept, smooth between.
  s = {};
  s.type = RopeType::llama3;
  s.factor = 8.0;
  s.original_context = 8192;
  const RopeFrequencies l3 = rope_frequencies(s, theta, d, 131072);
  int kept = 0, divided = 0, smooth = 0;
  for (int64_t i = 0; i < d / 2; ++i) {
    const double wavelen = 2 * M_PI / base(i), f = l3.inv_freq[size_t(i)];
    if (wavelen < 8192.0 / 4.0) {
      EXPECT_NEAR(f / base(i), 1.0, 1e-6);
      ++kept;
    } else if (wavelen > 8192.0) {
      EXPECT_NEAR(f / (base(i) / 8.0), 1.0, 1e-6);
      ++divided;
    } else {
      const double sm = (8192.0 / wavelen - 1.0) / 3.0;
      EXPECT_NEAR(f / ((1 - sm) * base(i) / 8.0 + sm * base(i)), 1.0, 1e-5);
      ++smooth;
    }
  }
  EXPECT_GT(kept * divided * smooth, 0);  // all three regimes occur at this shape
  // llama.cpp's rope_freqs divisors give the same frequencies.
  const auto factors = llama3_rope_factors(s, theta, d);
  for (int64_t i = 0; i < d / 2; ++i) EXPECT_NEAR(base(i) / factors[size_t(i)] / l3.inv_freq[size_t(i)], 1.0, 1e-6);
  // yarn: attention factor 0.1 ln(factor) + 1 unless given; ramp between the correction dims.
  s = {};
  s.type = RopeType::yarn;
  s.factor = 4.0;
  s.original_context = 4096;
  const RopeFrequencies y = rope_frequencies(s, theta, d, 16384);
  EXPECT_NEAR(y.attention_factor, 0.1 * std::log(4.0) + 1.0, 1e-6);
  EXPECT_NEAR(y.inv_freq[0] / base(0), 1.0, 1e-6);                   // high frequencies extrapolate
  EXPECT_NEAR(y.inv_freq[d / 2 - 1] / (base(d / 2 - 1) / 4.0), 1.0, 1e-6);  // low ones interpolate
  s.attention_factor = 0.5;
  EXPECT_FLOAT_EQ(rope_frequencies(s, theta, d, 16384).attention_factor, 0.5f);
  // dynamic: nothing changes up to max_position, then the base grows with the sequence length.
  s = {};
  s.type = RopeType::dynamic;
  s.factor = 2.0;
  EXPECT_EQ(rope_frequencies(s, theta, d, 1024, 1000).inv_freq, plain.inv_freq);
  const double grown = theta * std::pow(2.0 * 2048 / 1024 - 1.0, d / (d - 2.0));
  EXPECT_NEAR(rope_frequencies(s, theta, d, 1024, 2048).inv_freq[1] / (1.0 / std::pow(grown, 2.0 / d)), 1.0, 1e-5);
  s.factor = 0;
  EXPECT_THROW(rope_frequencies(s, theta, d, 1024), Error);
}

// Each RoPE variant survives HF -> GGUF (llama.cpp's keys, rope_freqs.weight for llama3) -> engine unchanged:
// the GGUF's logits equal the HF directory's bit for bit.
TEST(RopeGguf, ScalingRoundTripsThroughGgufKeys) {
  test::TempDir dir;
  for (const char* variant : {"llama3_rope_v5", "falcon3_yarn", "bitnet_dynamic", "llama_linear"}) {
    const std::string hf = kGolden + "/" + variant, gguf = dir.file(std::string(variant) + ".gguf");
    ConvertOptions o;
    o.ternary_type = GgmlType::i2_s;
    o.float_type = std::nullopt;
    convert_model(hf, gguf, o);
    const Model a = Model::load(hf), b = Model::load(gguf);
    EXPECT_EQ(a.config().rope_scaling, b.config().rope_scaling) << variant;
    EXPECT_EQ(a.config().head_dim, b.config().head_dim) << variant;
    const GgufFile f = GgufFile::open(gguf);
    if (std::string(variant) == "llama3_rope_v5") {
      EXPECT_NE(f.find_tensor("rope_freqs.weight"), nullptr);
      EXPECT_EQ(f.find(f.architecture() + ".rope.scaling.type"), nullptr);
    } else {
      EXPECT_NE(f.find(f.architecture() + ".rope.scaling.type"), nullptr) << variant;
    }
    std::vector<int32_t> tokens(20);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(7 * i % 500);
    Engine ea(a, 32), eb(b, 32);
    std::vector<float> la(tokens.size() * 512), lb(la.size());
    ea.eval_all(0, tokens, 0, la.data());
    eb.eval_all(0, tokens, 0, lb.data());
    EXPECT_EQ(la, lb) << variant;
    // And the GGUF's config.json form for safetensors output carries the scaling back (llama3: refused by note).
  }
}

TEST(RopeGguf, UnknownScalingTypeIsRefusedByName) {
  test::TempDir dir;
  Model m = Model::random(TransformerConfig::tiny(64), 1);
  m.save_gguf(dir.file("m.gguf"), GgmlType::i2_s, {{"bitnet-b1.58.rope.scaling.type", GgufValue::string("longrope")},
                                                   {"bitnet-b1.58.rope.scaling.factor", GgufValue::f32(2.0f)}});
  const std::string msg = test::error_of([&] { Model::load(dir.file("m.gguf")); });
  EXPECT_NE(msg.find("longrope"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m.gguf"), std::string::npos) << msg;
}

// A full-precision checkpoint (no quantization_config) runs only with an explicit quantize, everywhere.
TEST(QuantizeFollowsTheFile, FullPrecisionCheckpointNeedsQuantize) {
  test::TempDir dir;
  const fs::path src = kGolden + "/bitnet_latent", d = dir.path() / "fp";
  fs::create_directories(d);
  fs::copy_file(src / "model.safetensors", d / "model.safetensors");
  std::ifstream in(src / "config.json");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json cfg = nlohmann::json::parse(text.str());
  cfg.erase("quantization_config");
  std::ofstream(d / "config.json") << cfg.dump();
  const std::string msg = test::error_of([&] { Model::load(d.string()); });
  EXPECT_NE(msg.find("quantization_config"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--quantize"), std::string::npos) << msg;
  std::vector<std::string> notes;
  const Model m = Model::load(d.string(), LoadOptions{HeadType::f16, true}, &notes);
  EXPECT_EQ(m.config().layers, 2);
  // The user is told what was done, and why.
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(), [](const std::string& n) {
    return n.find("ternarized 14") != std::string::npos && n.find("--quantize") != std::string::npos;
  })) << (notes.empty() ? "" : notes[0]);
  // With quantization_config (online) the same latent weights need no flag (the golden directory itself).
  EXPECT_NO_THROW(Model::load(src.string()));
}

TEST(ModelPath, EverySpellingOfACheckpointAndClearRefusals) {
  const std::string hf = kGolden + "/llama_linear";
  for (const std::string& p : {hf, hf + "/config.json", hf + "/model.safetensors"}) {
    const ModelPath r = resolve_model_path(p);
    EXPECT_EQ(r.kind, ModelPath::Kind::hf_dir) << p;
    EXPECT_TRUE(fs::equivalent(r.path, hf)) << p;
  }
  test::TempDir dir;
  EXPECT_NE(test::error_of([&] { resolve_model_path(dir.file("nope.gguf")); }).find("does not exist"), std::string::npos);
  EXPECT_NE(test::error_of([&] { resolve_model_path(dir.path().string()); }).find("config.json"), std::string::npos);
  std::ofstream(dir.file("x.gguf")) << "not a gguf";
  EXPECT_NE(test::error_of([&] { resolve_model_path(dir.file("x.gguf")); }).find("magic"), std::string::npos);
  EXPECT_NE(test::error_of([&] { resolve_model_path("/dev/null"); }).find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace bitnet
