// Whole-model conversion and inspection on a tiny synthetic BitNet checkpoint: HF packed -> GGUF (TQ2_0, TQ1_0,
// I2_S) -> HF packed must be byte-exact; latent weights are refused unless quantization is asked for; inspect
// finds planted all-zero tensors, code-3 bytes and NaN scales.
#include <bitnet/dtype.h>
#include <bitnet/model.h>
#include <bitnet/model_files.h>
#include <bitnet/safetensors.h>
#include <bitnet/ternary_formats.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "io_test_util.h"
#include "numpy_oracle.h"

namespace bitnet {
namespace {

using test::TempDir;

constexpr int64_t kHidden = 256, kFfn = 512, kVocab = 64, kKv = 128;

struct Proj {
  const char* hf;
  int64_t out, in;
};
constexpr Proj kProj[] = {{"self_attn.q_proj", kHidden, kHidden}, {"self_attn.k_proj", kKv, kHidden},
                          {"self_attn.v_proj", kKv, kHidden},     {"self_attn.o_proj", kHidden, kHidden},
                          {"mlp.gate_proj", kFfn, kHidden},       {"mlp.up_proj", kFfn, kHidden},
                          {"mlp.down_proj", kHidden, kFfn}};

void write_config(const std::string& dir, const std::string& linear_class) {
  std::ofstream(dir + "/config.json") << fmt::format(R"({{"architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
    "vocab_size": {}, "hidden_size": {}, "intermediate_size": {}, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "hidden_act": "relu2", "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "tie_word_embeddings": true, "quantization_config": {{"quant_method": "bitnet", "linear_class": "{}"}}}})",
    kVocab, kHidden, kFfn, linear_class);
}

// packed = true: uint8 + bf16 weight_scale (2B4T layout); false: bf16 latent weights (the -bf16 repo layout).
void write_checkpoint(const std::string& dir, bool packed, std::mt19937& rng, bool zero_layer0_up = false) {
  std::uniform_int_distribution<int> trit(-1, 1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  struct T {
    std::string name;
    StDType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<T> ts;
  auto bf16_bytes = [](const std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t x = f32_to_bf16(v[i]);
      std::memcpy(b.data() + 2 * i, &x, 2);
    }
    return b;
  };
  std::vector<float> emb(kVocab * kHidden);
  for (auto& x : emb) x = nd(rng) * 0.02f;
  ts.push_back({"model.embed_tokens.weight", StDType::bf16, {kVocab, kHidden}, bf16_bytes(emb)});
  ts.push_back({"model.norm.weight", StDType::bf16, {kHidden}, bf16_bytes(std::vector<float>(kHidden, 1.25f))});
  for (int l = 0; l < 2; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    for (const char* n : {"input_layernorm", "post_attention_layernorm", "self_attn.attn_sub_norm"})
      ts.push_back({p + n + ".weight", StDType::bf16, {kHidden}, bf16_bytes(std::vector<float>(kHidden, 0.5f + l))});
    ts.push_back({p + "mlp.ffn_sub_norm.weight", StDType::bf16, {kFfn}, bf16_bytes(std::vector<float>(kFfn, 2.0f))});
    for (const auto& pr : kProj) {
      const bool zero = zero_layer0_up && l == 0 && std::string(pr.hf) == "mlp.up_proj";
      if (packed) {
        std::vector<int8_t> v(pr.out * pr.in);
        for (auto& x : v) x = zero ? 0 : static_cast<int8_t>(trit(rng));
        ts.push_back({p + pr.hf + ".weight", StDType::u8, {pr.out / 4, pr.in},
                      pack_ternary(TernaryFormat::hf_u8, v, pr.out, pr.in, 0)});
        ts.push_back({p + pr.hf + ".weight_scale", StDType::bf16, {1},
                      bf16_bytes({1.0f + 0.0625f * static_cast<float>(l * 7 + (&pr - kProj))})});
      } else {
        std::vector<float> w(pr.out * pr.in);
        for (auto& x : w) x = zero ? 0.0f : nd(rng);
        ts.push_back({p + pr.hf + ".weight", StDType::bf16, {pr.out, pr.in}, bf16_bytes(w)});
      }
    }
  }
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  for (const auto& t : ts) w.add_tensor(t.name, t.dtype, t.shape);
  w.write_header(dir + "/model.safetensors");
  for (const auto& t : ts) w.write(std::as_bytes(std::span<const uint8_t>(t.bytes)));
  w.finish();
}

std::vector<uint8_t> bytes_of(const SafetensorsFile& f, const std::string& name) {
  const auto d = f.data(f.tensor(name));
  return std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(d.data()), reinterpret_cast<const uint8_t*>(d.data()) + d.size());
}

TEST(ModelFiles, NameMapping) {
  EXPECT_EQ(*hf_to_gguf_name("model.layers.12.mlp.down_proj.weight"), "blk.12.ffn_down.weight");
  EXPECT_EQ(*hf_to_gguf_name("model.layers.0.self_attn.inner_attn_ln.weight"), "blk.0.attn_sub_norm.weight");
  EXPECT_EQ(*gguf_to_hf_name("blk.3.attn_output.weight"), "model.layers.3.self_attn.o_proj.weight");
  EXPECT_EQ(*gguf_to_hf_name("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_FALSE(hf_to_gguf_name("model.layers.x.mlp.up_proj.weight").has_value());
  EXPECT_FALSE(hf_to_gguf_name("model.layers.1.mlp.up_proj.bias").has_value());
  EXPECT_TRUE(is_ternary_projection("blk.29.ffn_gate.weight"));
  EXPECT_FALSE(is_ternary_projection("blk.29.ffn_norm.weight"));
}

TEST(ModelFiles, HfPackedToEveryGgufTypeAndBackIsByteExact) {
  TempDir dir;
  std::mt19937 rng(1);
  write_config(dir.path().string(), "autobitlinear");
  write_checkpoint(dir.path().string(), true, rng);
  const SafetensorsFile src = SafetensorsFile::open(dir.file("model.safetensors"));
  for (const char* type : {"tq2_0", "tq1_0", "i2_s"}) {
    SCOPED_TRACE(type);
    ConvertOptions o;
    o.ternary_type = parse_ggml_type(type);
    o.float_type.reset();  // keep bf16: the whole round trip is lossless
    std::vector<size_t> calls;
    o.progress = [&](size_t done, size_t total, const std::string&) {
      EXPECT_EQ(total, 24u);
      calls.push_back(done);
    };
    const std::string gguf = dir.file(std::string("m_") + type + ".gguf");
    const ConvertSummary s = convert_model(dir.path().string(), gguf, o);
    ASSERT_EQ(calls.size(), 25u);  // before each tensor, then once at the end
    for (size_t i = 0; i < calls.size(); ++i) EXPECT_EQ(calls[i], i);
    EXPECT_EQ(s.ternary_tensors, 14u);
    EXPECT_EQ(s.tensors, 2u + 2 * 11);
    const GgufFile g = GgufFile::open(gguf);
    EXPECT_EQ(g.architecture(), "bitnet-b1.58");
    EXPECT_EQ(g.get_int("bitnet-b1.58.block_count"), 2);
    EXPECT_EQ(g.get_int("bitnet-b1.58.attention.head_count_kv"), 2);
    EXPECT_EQ(g.get_int("general.file_type"), std::string(type) == "i2_s" ? 40 : std::string(type) == "tq1_0" ? 36 : 37);
    const auto& q = g.tensor("blk.1.attn_k.weight");
    EXPECT_EQ(q.type, o.ternary_type);
    EXPECT_EQ(q.dims, (std::vector<int64_t>{kHidden, kKv}));
    EXPECT_EQ(g.tensor("blk.0.ffn_norm.weight").type, GgmlType::f32);
    EXPECT_EQ(g.tensor("token_embd.weight").type, GgmlType::bf16);
    if (std::string(type) == "tq2_0") {
      // By default the embedding becomes F16, as in bitnet.cpp's GGUF: each value is the bf16 value rounded.
      const std::string f16 = dir.file("m_f16.gguf");
      ConvertOptions def;
      convert_model(dir.path().string(), f16, def);
      const GgufFile h = GgufFile::open(f16);
      const auto& e = h.tensor("token_embd.weight");
      EXPECT_EQ(e.type, GgmlType::f16);
      const auto hd = h.tensor_data(e), bd = src.data(src.tensor("model.embed_tokens.weight"));
      for (int i = 0; i < kVocab * kHidden; i += 97) {
        uint16_t hb, bb;
        std::memcpy(&hb, hd.data() + 2 * i, 2);
        std::memcpy(&bb, bd.data() + 2 * i, 2);
        EXPECT_EQ(hb, f32_to_f16(bf16_to_f32(bb))) << i;
      }
    }
    // The scale made it through: layer 1, k_proj (index 1) -> 1 + 0.0625 * 8.
    const auto& fmt_ = o.ternary_type == GgmlType::i2_s ? TernaryFormat::i2_s
                       : o.ternary_type == GgmlType::tq1_0 ? TernaryFormat::tq1_0 : TernaryFormat::tq2_0;
    const auto d = g.tensor_data(q);
    const TernaryTensor t = unpack_ternary(fmt_, {reinterpret_cast<const uint8_t*>(d.data()), d.size()}, kKv, kHidden);
    EXPECT_EQ(t.scale, 1.5f);

    const std::string back = dir.file(std::string("back_") + type + ".safetensors");
    convert_model(gguf, back, {});
    const SafetensorsFile b = SafetensorsFile::open(back);
    for (int l = 0; l < 2; ++l)
      for (const auto& pr : kProj) {
        const std::string n = fmt::format("model.layers.{}.{}.weight", l, pr.hf);
        EXPECT_EQ(bytes_of(b, n), bytes_of(src, n)) << n;
        EXPECT_EQ(bytes_of(b, n + "_scale"), bytes_of(src, n + "_scale")) << n;
        EXPECT_EQ(b.tensor(n + "_scale").dtype, StDType::bf16);
      }
    EXPECT_EQ(bytes_of(b, "model.embed_tokens.weight"), bytes_of(src, "model.embed_tokens.weight"));
  }
}

TEST(ModelFiles, GgufRetypeChainIsByteExactAndReadableByGgufPy) {
  TempDir dir;
  std::mt19937 rng(2);
  write_config(dir.path().string(), "autobitlinear");
  write_checkpoint(dir.path().string(), true, rng);
  ConvertOptions o;
  o.ternary_type = GgmlType::i2_s;
  convert_model(dir.path().string(), dir.file("a.gguf"), o);
  o.ternary_type = GgmlType::tq1_0;
  convert_model(dir.file("a.gguf"), dir.file("b.gguf"), o);
  o.ternary_type = GgmlType::tq2_0;
  convert_model(dir.file("b.gguf"), dir.file("c.gguf"), o);
  ConvertOptions direct;
  direct.ternary_type = GgmlType::tq2_0;
  convert_model(dir.path().string(), dir.file("d.gguf"), direct);
  const GgufFile c = GgufFile::open(dir.file("c.gguf")), d = GgufFile::open(dir.file("d.gguf"));
  ASSERT_EQ(c.tensors().size(), d.tensors().size());
  for (const auto& t : d.tensors()) {
    const auto x = c.tensor_data(c.tensor(t.name)), y = d.tensor_data(t);
    ASSERT_EQ(x.size(), y.size()) << t.name;
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0) << t.name;
  }
  // upstream's reader agrees on every tensor of our TQ2_0 file
  if (!test::oracle_unavailable_reason("gguf").empty()) GTEST_SKIP() << "oracle unavailable: python module 'gguf'";
  const auto out = test::run_model_oracle("gguf_read", test::read_file(dir.file("d.gguf")));
  const auto j = nlohmann::json::parse(out.begin(), out.end());
  ASSERT_EQ(j["tensors"].size(), d.tensors().size());
  for (size_t i = 0; i < d.tensors().size(); ++i) {
    const auto& t = d.tensors()[i];
    EXPECT_EQ(j["tensors"][i]["name"], t.name);
    EXPECT_EQ(j["tensors"][i]["type"], t.type_id);
    const auto bytes = d.tensor_data(t);
    EXPECT_EQ(j["tensors"][i]["hex"], test::to_hex(bytes.data(), bytes.size())) << t.name;
  }
  EXPECT_EQ(j["kv"]["bitnet-b1.58.embedding_length"]["value"], kHidden);
}

TEST(ModelFiles, ShardedSafetensorsOutputAndTensorViews) {
  TempDir dir;
  std::mt19937 rng(7);
  write_config(dir.path().string(), "autobitlinear");
  write_checkpoint(dir.path().string(), true, rng);
  ConvertOptions keep;
  keep.float_type.reset();
  convert_model(dir.path().string(), dir.file("m.gguf"), keep);
  TempDir out;
  ConvertOptions o;
  o.max_shard_bytes = 40000;
  convert_model(dir.file("m.gguf"), out.file("model.safetensors"), o);
  EXPECT_TRUE(std::filesystem::exists(out.file("model.safetensors.index.json")));
  EXPECT_FALSE(std::filesystem::exists(out.file("model.safetensors")));
  const SafetensorsModel sharded = SafetensorsModel::open(out.path().string());
  EXPECT_GT(sharded.shards().size(), 2u);
  const SafetensorsFile src = SafetensorsFile::open(dir.file("model.safetensors"));
  EXPECT_EQ(sharded.names().size(), src.tensors().size());
  for (const auto& t : src.tensors()) {
    const auto a = sharded.data(sharded.tensor(t.name)), b = src.data(t);
    if (t.name.find("norm") != std::string::npos) continue;  // norms come back as F32
    ASSERT_EQ(a.size(), b.size()) << t.name;
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0) << t.name;
  }
  // Tensor views of the mapping: values, shapes, no copy.
  const GgufFile g = GgufFile::open(dir.file("m.gguf"));
  const Tensor norm = gguf_tensor_view(g, "blk.1.attn_norm.weight");
  EXPECT_EQ(norm.dtype(), DType::f32);
  EXPECT_EQ(norm.shape(), (Shape{kHidden}));
  EXPECT_EQ(norm.at({3}), 1.5);  // 0.5 + layer 1
  EXPECT_EQ(norm.storage()->data(), reinterpret_cast<const std::byte*>(g.tensor_data(g.tensor("blk.1.attn_norm.weight")).data()));
  const Tensor emb = safetensors_tensor_view(sharded, "model.embed_tokens.weight");
  EXPECT_EQ(emb.dtype(), DType::bf16);
  EXPECT_EQ(emb.shape(), (Shape{kVocab, kHidden}));
  const Tensor emb0 = safetensors_tensor_view(SafetensorsModel::open(dir.path().string()), "model.embed_tokens.weight");
  EXPECT_EQ(emb.at({5, 7}), emb0.at({5, 7}));
  EXPECT_THROW(gguf_tensor_view(g, "blk.0.attn_q.weight"), Error);  // TQ2_0: no plain dtype
}

TEST(ModelFiles, DivideConventionInvertsScale) {
  TempDir dir;
  std::mt19937 rng(3);
  write_config(dir.path().string(), "bitlinear");
  write_checkpoint(dir.path().string(), true, rng);
  ConvertOptions o;
  o.ternary_type = GgmlType::i2_s;
  convert_model(dir.path().string(), dir.file("m.gguf"), o);
  const GgufFile g = GgufFile::open(dir.file("m.gguf"));
  const auto d = g.tensor_data(g.tensor("blk.0.attn_q.weight"));
  float s;
  std::memcpy(&s, d.data() + kHidden * kHidden / 4, 4);
  EXPECT_EQ(s, 1.0f / 1.0f);
  const auto d2 = g.tensor_data(g.tensor("blk.1.ffn_down.weight"));  // stored 1 + 0.0625 * 13 = 1.8125
  std::memcpy(&s, d2.data() + kHidden * kFfn / 4, 4);
  EXPECT_EQ(s, 1.0f / 1.8125f);
}

TEST(ModelFiles, LatentWeightsNeedQuantize) {
  TempDir dir;
  std::mt19937 rng(4);
  write_config(dir.path().string(), "autobitlinear");
  write_checkpoint(dir.path().string(), false, rng);
  const std::string msg = test::error_of([&] { convert_model(dir.path().string(), dir.file("m.gguf"), {}); });
  EXPECT_NE(msg.find("non-ternary"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--quantize"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.gguf")));  // no half-written output
  ConvertOptions o;
  o.quantize = true;
  const ConvertSummary s = convert_model(dir.path().string(), dir.file("m.gguf"), o);
  EXPECT_EQ(s.quantized_tensors, 14u);
  // The result equals quantize_absmean of the bf16 weights, packed as TQ2_0.
  const SafetensorsFile src = SafetensorsFile::open(dir.file("model.safetensors"));
  const auto w = src.data(src.tensor("model.layers.1.mlp.up_proj.weight"));
  std::vector<uint16_t> bits(w.size() / 2);
  std::memcpy(bits.data(), w.data(), w.size());
  const TernaryTensor t = quantize_absmean_bf16(bits, kFfn, kHidden);
  const auto expect = pack_ternary(TernaryFormat::tq2_0, t.values, kFfn, kHidden, t.scale);
  const GgufFile g = GgufFile::open(dir.file("m.gguf"));
  const auto got = g.tensor_data(g.tensor("blk.1.ffn_up.weight"));
  ASSERT_EQ(got.size(), expect.size());
  EXPECT_EQ(std::memcmp(got.data(), expect.data(), got.size()), 0);
}

// A SentencePiece-style BPE in tokenizer.json (Llama-2's and 1bitLLM's: a normalizer, byte fallback, no ByteLevel
// step) is not byte-level: written as GGUF's "gpt2" it would tokenize wrongly, so it is left out with a note.
TEST(ModelFiles, SentencePieceStyleTokenizerJsonIsNotConvertedAsGpt2) {
  TempDir dir;
  std::mt19937 rng(7);
  write_config(dir.path().string(), "autobitlinear");
  write_checkpoint(dir.path().string(), true, rng);
  {
    nlohmann::json vocab = nlohmann::json::object();
    for (int i = 0; i < 60; ++i) vocab[fmt::format("t{}", i)] = i;
    nlohmann::json tok = {
        {"normalizer", {{"type", "Sequence"}, {"normalizers", nlohmann::json::array({{{"type", "Prepend"}, {"prepend", "\u2581"}}})}}},
        {"pre_tokenizer", nullptr},
        {"decoder", {{"type", "Sequence"}, {"decoders", nlohmann::json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}}},
        {"model", {{"type", "BPE"}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", nlohmann::json::array({"t1 t2"})}}}};
    std::ofstream(dir.file("tokenizer.json")) << tok.dump();
  }
  const ConvertSummary s = convert_model(dir.path().string(), dir.file("m.gguf"), {});
  const GgufFile g = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(g.find("tokenizer.ggml.model"), nullptr);
  bool said = false;
  for (const auto& n : s.notes) said |= n.find("SentencePiece-style BPE") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(ModelFiles, TokenizerAndConfigCarriedAcross) {
  TempDir dir;
  std::mt19937 rng(6);
  write_config(dir.path().string(), "autobitlinear");
  write_checkpoint(dir.path().string(), true, rng);
  {
    nlohmann::json vocab = nlohmann::json::object();
    for (int i = 0; i < 60; ++i) vocab[fmt::format("t{}", i)] = i;
    nlohmann::json tok = {{"model", {{"type", "BPE"}, {"vocab", vocab},
                                     {"merges", nlohmann::json::array({"t1 t2", nlohmann::json::array({"t3", "t4"})})}}},
                          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                          {"added_tokens", nlohmann::json::array({{{"id", 60}, {"content", "<|begin_of_text|>"}, {"special", true}},
                                                                  {{"id", 62}, {"content", "<x>"}, {"special", false}}})}};
    std::ofstream(dir.file("tokenizer.json")) << tok.dump();
    std::ofstream(dir.file("tokenizer_config.json")) << R"({"chat_template": "{{ messages }}"})";
  }
  convert_model(dir.path().string(), dir.file("m.gguf"), {});
  const GgufFile g = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(g.get_string("tokenizer.ggml.pre"), "llama-bpe");
  const auto& tokens = g.at("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.count, uint64_t(kVocab));
  EXPECT_EQ(tokens.strings[5], "t5");
  EXPECT_EQ(tokens.strings[60], "<|begin_of_text|>");
  EXPECT_EQ(tokens.strings[61], "[PAD61]");
  const auto& types = g.at("tokenizer.ggml.token_type");
  EXPECT_EQ(*types.int_at(5), 1);
  EXPECT_EQ(*types.int_at(60), 3);
  EXPECT_EQ(*types.int_at(61), 5);
  EXPECT_EQ(*types.int_at(62), 4);
  EXPECT_EQ(g.at("tokenizer.ggml.merges").strings, (std::vector<std::string>{"t1 t2", "t3 t4"}));
  EXPECT_EQ(g.get_string("tokenizer.chat_template"), "{{ messages }}");
  EXPECT_TRUE(inspect_model(dir.file("m.gguf"))["problems"].empty());

  TempDir out;
  convert_model(dir.file("m.gguf"), out.file("model.safetensors"), {});
  const ModelConfig c = load_model_config(out.path().string());
  EXPECT_EQ(c.architectures, (std::vector<std::string>{"BitNetForCausalLM"}));
  EXPECT_EQ(c.hidden_size, kHidden);
  EXPECT_EQ(c.intermediate_size, kFfn);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.vocab_size, kVocab);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.quantization->scale_convention(), ScaleConvention::multiply);
  // and the converted directory converts again, to the same ternary bytes
  convert_model(out.path().string(), out.file("again.gguf"), {});
  const GgufFile again = GgufFile::open(out.file("again.gguf"));
  for (const auto& t : g.tensors()) {
    const auto a = again.tensor_data(again.tensor(t.name)), b = g.tensor_data(t);
    ASSERT_EQ(a.size(), b.size()) << t.name;
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0) << t.name;
  }
}

TEST(ModelFiles, InspectReportsInconsistentTokenizerArrays) {
  TempDir dir;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("llama.vocab_size", GgufValue::u32(4));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b", "c"}));
  const std::vector<float> scores = {0, 0};
  w.set("tokenizer.ggml.scores", GgufValue::scalar_array<float>(GgufValueType::f32, scores));
  w.set("tokenizer.ggml.token_type", GgufValue::string_array({"1", "1", "1"}));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(3));
  w.set("llama.rope.freq_base", GgufValue::f32(std::numeric_limits<float>::quiet_NaN()));
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w.write_header(dir.file("t.gguf"));
  w.finish();
  const auto report = inspect_model(dir.file("t.gguf"));
  EXPECT_EQ(report["metadata"]["llama.rope.freq_base"]["value"], "nan");
  EXPECT_EQ(report["metadata"]["llama.attention.layer_norm_rms_epsilon"]["value"].dump(), "1e-05");
  const std::string p = report["problems"].dump();
  EXPECT_NE(p.find("tokenizer.ggml.scores: 2 entries for 3 tokens"), std::string::npos) << p;
  EXPECT_NE(p.find("tokenizer.ggml.token_type: expected an array of i32"), std::string::npos) << p;
  EXPECT_NE(p.find("llama.vocab_size is 4 but there are 3 tokens"), std::string::npos) << p;
  EXPECT_NE(p.find("tokenizer.ggml.eos_token_id = 3"), std::string::npos) << p;
}

TEST(ModelFiles, InspectFindsAllZeroAndBrokenTensors) {
  TempDir dir;
  std::mt19937 rng(5);
  write_config(dir.path().string(), "autobitlinear");
  write_checkpoint(dir.path().string(), true, rng, /*zero_layer0_up=*/true);
  const auto r = inspect_model(dir.path().string());
  EXPECT_EQ(r["format"], "safetensors");
  ASSERT_EQ(r["problems"].size(), 1u) << r["problems"].dump();
  EXPECT_NE(r["problems"][0].get<std::string>().find("model.layers.0.mlp.up_proj.weight: all values are zero"),
            std::string::npos);
  convert_model(dir.path().string(), dir.file("m.gguf"), {});
  const auto g = inspect_model(dir.file("m.gguf"));
  EXPECT_EQ(g["format"], "gguf");
  EXPECT_EQ(g["metadata"]["general.architecture"]["value"], "bitnet-b1.58");
  ASSERT_EQ(g["problems"].size(), 1u) << g["problems"].dump();
  EXPECT_NE(g["problems"][0].get<std::string>().find("blk.0.ffn_up.weight"), std::string::npos);
  bool found = false;
  for (const auto& t : g["tensors"])
    if (t["name"] == "blk.1.attn_q.weight") {
      found = true;
      EXPECT_EQ(t["type"], "TQ2_0");
      EXPECT_EQ(t["shape"], nlohmann::json::array({kHidden, kHidden}));
      EXPECT_EQ(t["bytes"], kHidden * kHidden / 256 * 66);
      EXPECT_EQ(t["checks"]["invalid_codes"], 0);
      EXPECT_EQ(t["checks"]["distinct_scales"], 1);
    }
  EXPECT_TRUE(found);

  // A GGUF with a NaN TQ2_0 scale and a code-3 I2_S byte.
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("bitnet-b1.58"));
  w.add_tensor("blk.0.attn_q.weight", {256, 1}, GgmlType::tq2_0);
  w.add_tensor("blk.0.attn_k.weight", {128, 1}, GgmlType::i2_s);
  w.write_header(dir.file("bad.gguf"));
  std::vector<uint8_t> tq(66, 0x55);
  tq[64] = 0x00;
  tq[65] = 0x7e;  // fp16 NaN
  std::vector<uint8_t> i2(64, 0x55);
  i2[0] = 0xFF;  // four code-3 values
  const float one = 1.0f;
  std::memcpy(i2.data() + 32, &one, 4);
  w.write_tensor(std::as_bytes(std::span<const uint8_t>(tq)));
  w.write_tensor(std::as_bytes(std::span<const uint8_t>(i2)));
  w.finish();
  const auto b = inspect_model(dir.file("bad.gguf"));
  const std::string problems = b["problems"].dump();
  EXPECT_NE(problems.find("blk.0.attn_q.weight: 1 scales are NaN or Inf"), std::string::npos) << problems;
  EXPECT_NE(problems.find("blk.0.attn_k.weight: 4 codes are not ternary"), std::string::npos) << problems;
}


// scripts/gguf_as_upstream_bitnet.py (docs/performance.md: one file for this engine and upstream llama.cpp) keeps
// every tensor byte for byte, renames the keys to llama.cpp's `bitnet` architecture, adds `no_vocab`, and the
// engine loads the result as that architecture (SiLU gate).
TEST(ModelFiles, UpstreamBitnetRewriteKeepsEveryTensor) {
  if (!test::oracle_unavailable_reason("gguf").empty()) GTEST_SKIP() << "oracle unavailable: python module 'gguf'";
  TempDir dir;
  const TransformerConfig config = TransformerConfig::tiny(300);
  Model::random(config, 3).save_gguf(dir.file("in.gguf"), GgmlType::tq2_0, {});
  int status = 0;
  const std::string out = test::run_command(std::string(BITNET_PYTHON) + " " + BITNET_SOURCE_DIR +
                                                "/scripts/gguf_as_upstream_bitnet.py " + dir.file("in.gguf") + " " +
                                                dir.file("out.gguf"),
                                            &status);
  ASSERT_EQ(status, 0) << out;
  const GgufFile a = GgufFile::open(dir.file("in.gguf")), b = GgufFile::open(dir.file("out.gguf"));
  EXPECT_EQ(b.at("general.architecture").str, "bitnet");
  EXPECT_EQ(b.at("tokenizer.ggml.model").str, "no_vocab");
  EXPECT_EQ(b.at("bitnet.embedding_length").as_int(), config.hidden);
  EXPECT_EQ(b.at("bitnet.block_count").as_int(), config.layers);
  EXPECT_EQ(b.find("bitnet-b1.58.embedding_length"), nullptr);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const auto x = a.tensor_data(t), y = b.tensor_data(b.tensor(t.name));
    ASSERT_EQ(x.size(), y.size()) << t.name;
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0) << t.name;
  }
  const Model m = Model::load_gguf(dir.file("out.gguf"));
  EXPECT_EQ(m.config().arch, "bitnet");
  EXPECT_EQ(m.config().activation, FfnActivation::silu);
  EXPECT_EQ(m.config().vocab, 300);
}

}  // namespace
}  // namespace bitnet
