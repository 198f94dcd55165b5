#pragma once
// Export of a trained model (nn::CausalLM with latent f32 weights) to the files `bitnet run` executes:
// GGUF with ternary projections (I2_S, TQ2_0 or TQ1_0), f16 embedding, f32 norms and the tokenizer's
// tokenizer.ggml.* keys; and a Hugging Face-style directory (model.safetensors with packed uint8 ternary weights
// + weight_scale, config.json, tokenizer.json).
#include <bitnet/gguf.h>
#include <bitnet/model.h>
#include <bitnet/nn.h>

#include <string>

namespace bitnet::train {

// The engine's model of a trained CausalLM. Each BitLinear's latent weight is ternarized by the QAT quantizer
// itself (nn::fake_quantize), so the ternary values and scale are exactly the ones the training forward used.
// Throws naming the projection when it is not ternary per-tensor weights with int8 per-token activations (the
// one layout the engine runs) or when quantization is only partly phased in (lambda < 1).
Model to_inference_model(const nn::CausalLM& lm);

struct ExportOptions {
  GgmlType ternary_type = GgmlType::i2_s;  // I2_S fits any shape; TQ1_0/TQ2_0 need in_features % 256 == 0
  std::string tokenizer_path;              // a byte-level BPE tokenizer.json; empty: no tokenizer keys
  std::string name;                        // general.name
};

// Writes the GGUF; returns the engine model it holds.
Model export_gguf(const nn::CausalLM& lm, const std::string& path, const ExportOptions& options);

// From an exported GGUF: `dir`/model.safetensors (packed uint8 + weight_scale, multiply convention),
// `dir`/config.json and, when given, `dir`/tokenizer.json.
void export_hf_dir(const std::string& gguf_path, const std::string& dir, const std::string& tokenizer_path);

}  // namespace bitnet::train

#include <bitnet/onnx.h>

namespace bitnet::train {

// `bitnet export --onnx` and bitnet.onnx.export: any model source as ONNX (bitnet/onnx.h): a GGUF file, an ONNX
// file, a Hugging Face directory (ternarized as Model::load_hf does), or a training run / checkpoint (exported
// as I2_S GGUF first; `run_config` as for `bitnet export -c`, empty: beside the checkpoint).
OnnxExportSummary export_onnx_from(const std::string& source, const std::string& out_path,
                                   const OnnxExportOptions& options = {}, const std::string& run_config = "");

}  // namespace bitnet::train
