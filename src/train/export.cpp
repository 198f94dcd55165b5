// Trained CausalLM -> the engine's Model -> GGUF (and an HF-style directory through `bitnet convert`'s writer).
#include <bitnet/bpe_train.h>
#include <bitnet/error.h>
#include <bitnet/export.h>
#include <bitnet/model_files.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/json_util.h"

namespace bitnet::train {

namespace {

namespace fs = std::filesystem;

std::vector<float> to_vector(const Tensor& t) {
  const Tensor f = t.to(DType::f32).contiguous();
  const float* p = f.data_as<float>();
  return std::vector<float>(p, p + f.numel());
}

// Ternary values and the per-tensor scale of the QAT forward: fake_quantize gives v * s with v in {-1, 0, 1}.
TernaryMatrix ternarize(const nn::BitLinear& layer, const std::string& name) {
  const nn::BitLinearOptions& o = layer.options();
  BITNET_CHECK(o.weight_quant == nn::QuantSpec::ternary(),
               "[export] {}: weights are {}, but the engine runs ternary/per_tensor only", name, o.weight_quant.str());
  BITNET_CHECK(o.act_quant == nn::QuantSpec::int8_per_token(),
               "[export] {}: activations are {}, but the engine runs int8/per_row only", name, o.act_quant.str());
  BITNET_CHECK(!o.with_norm, "[export] {}: a BitLinear with its own norm has no place in the engine's layout", name);
  BITNET_CHECK(layer.quant_lambda() == 1.0f,
               "[export] {}: quantization lambda is {}, not 1: the model is not fully ternary yet", name,
               layer.quant_lambda());
  const Tensor q = nn::fake_quantize(layer.weight.value(), o.weight_quant).contiguous();
  const int64_t rows = q.size(0), cols = q.size(1);
  const float* p = q.data_as<float>();
  float scale = 0.0f;
  for (int64_t i = 0; i < q.numel(); ++i) scale = std::max(scale, std::fabs(p[i]));
  std::vector<int8_t> values(static_cast<size_t>(q.numel()));
  for (int64_t i = 0; i < q.numel(); ++i) {
    const float v = scale > 0.0f ? p[i] / scale : 0.0f;
    values[static_cast<size_t>(i)] = static_cast<int8_t>(v > 0.5f ? 1 : (v < -0.5f ? -1 : 0));
  }
  // All-zero: any scale works; keep mean|W|'s floor so the file has a positive finite one.
  return TernaryMatrix::pack(values.data(), rows, cols, scale > 0.0f ? scale : 1e-5f);
}

}  // namespace

Model to_inference_model(const nn::CausalLM& lm) {
  const TransformerConfig config = lm.config().resolved();
  std::vector<LayerWeights> layers;
  for (size_t l = 0; l < lm.layers.size(); ++l) {
    const auto& b = *lm.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights w;
    w.attn_norm = to_vector(b.input_layernorm->weight.value());
    w.ffn_norm = to_vector(b.post_attention_layernorm->weight.value());
    w.attn_sub_norm = to_vector(b.self_attn->attn_sub_norm->weight.value());
    w.ffn_sub_norm = to_vector(b.mlp->ffn_sub_norm->weight.value());
    w.wq = ternarize(*b.self_attn->q_proj, p + "self_attn.q_proj");
    w.wk = ternarize(*b.self_attn->k_proj, p + "self_attn.k_proj");
    w.wv = ternarize(*b.self_attn->v_proj, p + "self_attn.v_proj");
    w.wo = ternarize(*b.self_attn->o_proj, p + "self_attn.o_proj");
    w.w_gate = ternarize(*b.mlp->gate_proj, p + "mlp.gate_proj");
    w.w_up = ternarize(*b.mlp->up_proj, p + "mlp.up_proj");
    w.w_down = ternarize(*b.mlp->down_proj, p + "mlp.down_proj");
    layers.push_back(std::move(w));
  }
  return Model::from_weights(config, lm.embed_tokens->weight.value(), std::move(layers),
                             to_vector(lm.norm->weight.value()), lm.lm_head ? lm.lm_head->weight.value() : Tensor());
}

Model export_gguf(const nn::CausalLM& lm, const std::string& path, const ExportOptions& o) {
  Model m = to_inference_model(lm);
  m.description = o.name.empty() ? fs::path(path).stem().string() : o.name;
  std::vector<std::pair<std::string, GgufValue>> extra;
  if (!o.tokenizer_path.empty()) {
    const BpeVocabulary v = read_bpe_tokenizer_json(o.tokenizer_path);
    BITNET_CHECK(static_cast<int64_t>(v.tokens.size()) <= m.config().vocab,
                 "[export] tokenizer '{}' has {} tokens but the model's vocab_size is {}", o.tokenizer_path,
                 v.tokens.size(), m.config().vocab);
    extra = bpe_gguf_keys(v);
  }
  m.save_gguf(path, o.ternary_type, extra);
  return m;
}

void export_hf_dir(const std::string& gguf_path, const std::string& dir, const std::string& tokenizer_path) {
  fs::create_directories(dir);
  for (const char* f : {"model.safetensors", "config.json"}) fs::remove(fs::path(dir) / f);  // convert keeps an old config.json
  ConvertOptions co;
  convert_model(gguf_path, (fs::path(dir) / "model.safetensors").string(), co);
  // Our tokenizers have no BOS. Say so explicitly: transformers would otherwise fill in BitNetConfig's default
  // (128000, outside this vocabulary) and warn.
  const fs::path config = fs::path(dir) / "config.json";
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(io::read_text_file(config.string(), 1 << 20));
  if (!j.contains("bos_token_id")) j["bos_token_id"] = nullptr;
  std::ofstream(config) << j.dump(2) << "\n";
  if (!tokenizer_path.empty())
    fs::copy_file(tokenizer_path, fs::path(dir) / "tokenizer.json", fs::copy_options::overwrite_existing);
}

}  // namespace bitnet::train
