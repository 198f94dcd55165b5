// Loading a Hugging Face directory (config.json + safetensors, sharded or not): the directory goes through the
// same streaming converter as `bitnet convert` into a temporary GGUF (I2_S projections: one f32 scale per
// tensor, exactly the HF per-tensor weight_scale), which load_gguf maps and which is unlinked at once (the
// mapping outlives the name). One converter means one set of rules for tensor names, packed uint8 weights and
// their scale convention, 1bitLLM's sub-norm names and latent weights (ternarized with absmean, as the HF
// models do at run time) — and one set of error messages.
#include <bitnet/error.h>
#include <bitnet/model.h>
#include <bitnet/model_files.h>
#include <bitnet/safetensors.h>

#include "io/temp_gguf.h"

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace bitnet {

ConvertSummary convert_for_loading(const ModelPath& source, const std::string& out, bool quantize) {
  ConvertOptions options;
  options.ternary_type = GgmlType::i2_s;
  options.quantize = quantize;
  options.float_type = std::nullopt;
  if (source.kind == ModelPath::Kind::hf_dir) {
    // The engine reads F16 or F32 embeddings and heads: F32 and F16 stay as they are, BF16 becomes F16 (as in
    // bitnet.cpp's official GGUF; BF16 has 3 fewer mantissa bits, so only the exponent range can lose).
    const SafetensorsModel st = SafetensorsModel::open(source.path);
    for (const auto& name : st.names())
      if (st.tensor(name).info->dtype == StDType::bf16) options.float_type = GgmlType::f16;
  }
  return convert_model(source.path, out, options);
}

Model Model::load_hf(const std::string& dir, const LoadOptions& load, std::vector<std::string>* notes) {
  BITNET_CHECK(std::filesystem::is_directory(dir), "[model] '{}' is not a directory", dir);
  const std::string config_path = (std::filesystem::path(dir) / "config.json").string();
  const ModelConfig cfg = load_model_config(config_path);
  // Quantization follows the checkpoint: running a full-precision one with ternary weights and int8
  // activations is a different model, so only on request.
  const bool bitnet_checkpoint = cfg.is_bitnet_checkpoint();
  if (!bitnet_checkpoint && !load.quantize)
    fail("[model] '{}' has no quantization_config: it is a full-precision checkpoint, which transformers runs in full "
         "precision. Pass --quantize (Python: quantize=True) to ternarize its projections with absmean and run it "
         "with BitNet b1.58 arithmetic (ternary weights, int8 activations), which changes its outputs", config_path);
  const TempGguf tmp;
  const ConvertSummary summary = convert_for_loading({ModelPath::Kind::hf_dir, dir}, tmp.path, true);
  if (notes != nullptr) {
    for (const auto& w : cfg.warnings) notes->push_back(w);
    if (summary.quantized_tensors > 0)
      notes->push_back(fmt::format("ternarized {} latent projection weights with absmean ({})", summary.quantized_tensors,
                                   bitnet_checkpoint ? "as the checkpoint's BitNet layers do at run time" : "--quantize"));
    if (cfg.rope_scaling.type != RopeType::none) notes->push_back("RoPE scaling: " + cfg.rope_scaling.describe());
  }
  Model m = load_gguf(tmp.path, LoadOptions{load.head, true, load.progress, load.packing});
  m.description = std::filesystem::path(dir).filename().string();
  if (m.description.empty()) m.description = std::filesystem::path(dir).parent_path().filename().string();
  return m;
}

// An ONNX file through a temporary I2_S GGUF, as a Hugging Face directory (see bitnet/onnx.h).
Model Model::load_onnx(const std::string& path, const LoadOptions& load, std::vector<std::string>* notes) {
  const TempGguf tmp;
  const ConvertSummary summary = convert_for_loading({ModelPath::Kind::onnx, path}, tmp.path, load.quantize);
  if (notes != nullptr) notes->insert(notes->end(), summary.notes.begin(), summary.notes.end());
  Model m = load_gguf(tmp.path, LoadOptions{load.head, true, load.progress, load.packing});
  m.description = std::filesystem::path(path).filename().string();
  return m;
}

Model Model::load(const std::string& path, const LoadOptions& options, std::vector<std::string>* notes) {
  const ModelPath p = resolve_model_path(path);
  if (p.kind == ModelPath::Kind::hf_dir) return load_hf(p.path, options, notes);
  if (p.kind == ModelPath::Kind::onnx) return load_onnx(p.path, options, notes);
  return load_gguf(p.path, options);
}

}  // namespace bitnet
