#pragma once
// Whole-model operations on files: HF <-> GGUF tensor names, streaming conversion (HF safetensors dir or GGUF
// -> GGUF with a chosen ternary type; GGUF -> HF safetensors with packed uint8 + weight_scale), and inspection
// (metadata, tensor table, checks for all-zero tensors, non-ternary codes and non-finite scales).
#include <bitnet/gguf.h>
#include <bitnet/model_config.h>
#include <bitnet/tensor.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace bitnet {

// "model.layers.3.mlp.up_proj.weight" <-> "blk.3.ffn_up.weight" (formats.md §1.1.2, §2.3.2); nullopt when the
// name has no counterpart. 1bitLLM's inner_attn_ln / ffn_layernorm map to attn_sub_norm / ffn_sub_norm.
std::optional<std::string> hf_to_gguf_name(std::string_view hf);
std::optional<std::string> gguf_to_hf_name(std::string_view gguf);
// The seven BitLinear projections per layer (GGUF names), whose weights are ternary.
bool is_ternary_projection(std::string_view gguf_name);

class SafetensorsModel;

// A plain-typed tensor (f32, f16, bf16, i8, i32; safetensors also u8) as a Tensor viewing the file mapping, in
// PyTorch shape order; copied only when its bytes are misaligned for the element type. Throws for packed types.
Tensor gguf_tensor_view(const GgufFile& f, std::string_view name);
Tensor safetensors_tensor_view(const SafetensorsModel& m, std::string_view name);

// GGUF tokenizer metadata (tokenizer.ggml.*, tokenizer.chat_template) from an HF directory's tokenizer.json
// (byte-level BPE) and tokenizer_config.json; empty with a note when there is no tokenizer.json.
std::vector<std::pair<std::string, GgufValue>> hf_tokenizer_to_gguf(const std::string& dir, const ModelConfig& cfg,
                                                                    std::vector<std::string>* notes);

struct ConvertOptions {
  GgmlType ternary_type = GgmlType::tq2_0;  // tq1_0 | tq2_0 | i2_s | f16 | f32 (dequantized)
  bool quantize = false;                    // allow absmean ternarization of non-ternary float projections
  // An ONNX file bitnet exported: write its projections in the ternary type it records (bitnet/onnx.h), so the
  // GGUF's tensors come back byte for byte; ternary_type when it records none. `bitnet convert` without -t.
  bool ternary_type_from_source = false;
  // HF input: type of the 2-D float tensors (embedding, untied lm_head). F16 as in bitnet.cpp's official GGUF
  // (and what the engine loads); nullopt keeps the source precision (bf16 stays BF16: lossless). Norms are F32.
  std::optional<GgmlType> float_type = GgmlType::f16;
  std::optional<ScaleConvention> scale_convention;  // HF input: override what config.json implies
  uint64_t max_shard_bytes = 0;  // safetensors output: split into shards + index.json above this size (0: one file)
  // Progress: (tensors done, total, name of the tensor being written).
  std::function<void(size_t, size_t, const std::string&)> progress;
};

struct ConvertSummary {
  size_t tensors = 0;
  size_t ternary_tensors = 0;
  size_t quantized_tensors = 0;  // ternarized with absmean because --quantize was given
  uint64_t output_bytes = 0;
  std::vector<std::string> notes;  // what the converter decided (scale convention, I2_S detection, skipped data)
};

// `input`: an HF directory (config.json + model.safetensors or a sharded index), a .gguf file, or an .onnx file
// (see bitnet/onnx.h: bitnet's export, whose tensors come back byte for byte, or a torch.onnx export of a
// transformers BitNet/Llama model with config.json beside it).
// `output`: *.gguf or *.safetensors (GGUF input only). Streams one tensor at a time.
ConvertSummary convert_model(const std::string& input, const std::string& output, const ConvertOptions& options);

// Report as JSON: {"format", "path", "metadata", "tensors": [{"name","type","shape","bytes","checks"...}],
// "problems": [...]}. Problems: all-zero tensors, non-ternary codes, non-finite or zero scales, NaN/Inf values.
nlohmann::json inspect_model(const std::string& path);

}  // namespace bitnet

namespace bitnet {

// What a user's model path names: a GGUF file, an ONNX file (*.onnx: bitnet's export, or a torch.onnx export
// of a transformers model with its config.json beside it), or a Hugging Face checkpoint directory (given as the
// directory, its config.json, one of its *.safetensors files or its model.safetensors.index.json). Throws naming
// the path for anything else: a missing path, a FIFO or device, a directory without config.json, a file that
// is none of these.
struct ModelPath {
  enum class Kind { gguf, hf_dir, onnx };
  Kind kind;
  std::string path;  // the GGUF file, or the checkpoint directory
};
ModelPath resolve_model_path(const std::string& path);

}  // namespace bitnet

namespace bitnet {

// llama.cpp's "llama" architecture rotates interleaved pairs (its RoPE type NORM), so its converter permutes the
// rows of attn_q / attn_k inside each head: row h*d + 2i + j of the file is row h*d + j*d/2 + i of the Hugging
// Face weight (convert_hf_to_gguf's LlamaModel.permute). The engine rotates half-split pairs as transformers
// does, so "llama" GGUF projections are un-permuted when loaded and permuted when written. `heads`: the query
// heads for attn_q, the KV heads for attn_k. Throws when rows do not split into heads of even width.
std::vector<int8_t> permute_llama_rope_rows(const std::vector<int8_t>& values, int64_t rows, int64_t cols,
                                            int64_t heads, bool to_gguf);
// The heads a GGUF tensor of `arch` is permuted over: `heads` for a "llama" attn_q, `kv_heads` for its attn_k,
// 0 for every other tensor (stored as they are).
int64_t llama_rope_permuted_heads(std::string_view arch, std::string_view gguf_name, int64_t heads, int64_t kv_heads);

}  // namespace bitnet
