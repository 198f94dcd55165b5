#pragma once
// BitNet b1.58 transformer models as the engine runs them: the architecture (from GGUF metadata, or given for a
// random model) and the weights, repacked once into the kernels' layouts.
#include <bitnet/dense.h>
#include <bitnet/gguf.h>
#include <bitnet/rope.h>
#include <bitnet/tensor.h>
#include <bitnet/ternary.h>

#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

enum class FfnActivation { relu2, silu };

struct TransformerConfig {
  std::string arch;             // GGUF general.architecture: "bitnet-b1.58", "bitnet-25", "bitnet", "llama"
  int64_t vocab = 0;
  int64_t hidden = 0;
  int64_t ffn = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t context = 4096;       // the model's trained context length
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;     // linear / llama3 / yarn / dynamic, as transformers computes them
  std::vector<float> rope_freq_factors;  // GGUF rope_freqs.weight (llama.cpp's llama3 form): inv_freq /= factor
  FfnActivation activation = FfnActivation::relu2;
  bool sub_norms = true;        // RMSNorm before o_proj and down_proj (BitNet's SubLN)

  // The shape of microsoft/bitnet-b1.58-2B-4T.
  static TransformerConfig bitnet_2b4t();
  // The 2B4T architecture at a small shape (hidden 256, 4 layers, GQA 4:2, 2048 context) for tests and
  // examples: it loads in milliseconds and decodes at thousands of tokens per second.
  static TransformerConfig tiny(int64_t vocab);
  void validate() const;  // throws naming the inconsistent field
  // The RoPE frequencies the engines rotate with; `seq_len` matters only for dynamic scaling (see rope.h).
  RopeFrequencies rope(int64_t seq_len = 0) const;
};

// The output head: f16 (as in the official files), or a copy quantized at load time to int8 (per row) or int4
// (groups of 32, see bitnet/dense.h), which decode reads in a half or a quarter of the bytes.
enum class HeadType { f16, int8, int4 };
HeadType parse_head_type(std::string_view name);  // one of head_type_names(); throws naming them
std::string_view head_type_name(HeadType head);
const std::vector<std::string>& head_type_names();  // "f16", "int8", "int4": the CLI's --head choices
inline constexpr const char* kHeadTypeHelp = "Output head: f16 (as in the file), or an int8 or int4 copy";

// How to open a model file or directory (Model::load, open_model).
struct LoadOptions {
  HeadType head = HeadType::f16;
  // A Hugging Face checkpoint without quantization_config runs in full precision in transformers; the engine
  // runs it only when asked to ternarize it (absmean weights, int8 activations: BitNet b1.58 arithmetic).
  bool quantize = false;
  // Called with (layers loaded, layers) as a GGUF file's layers are read and repacked; may be empty.
  std::function<void(int64_t, int64_t)> progress{};
  // The kernels' layout of the ternary weights (bitnet/ternary.h); unset: base3 for a TQ1_0 file's projections
  // (the file's own 1.6-bit density) where base3_decodes_fast(), 2bit for any other.
  std::optional<TernaryPacking> packing{};
};
// The CLI's --packing choices: "auto" (LoadOptions::packing unset), "2bit", "base3".
std::optional<TernaryPacking> parse_packing_choice(std::string_view name);  // throws naming the choices
const std::vector<std::string>& packing_choice_names();
inline constexpr const char* kPackingHelp =
    "Ternary weights in memory: 2bit, or base3 (1.6 bits per weight: 20% fewer bytes per token, a costlier "
    "decode); auto: base3 for TQ1_0 files where the CPU decodes it fast (AVX-512 VBMI), else 2bit";

struct LayerWeights {
  std::vector<float> attn_norm, attn_sub_norm, ffn_norm, ffn_sub_norm;
  TernaryMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

class Model {
 public:
  // Loads a GGUF file (bitnet.cpp I2_S, llama.cpp TQ1_0/TQ2_0, or F32/F16 ternary-valued projections). The
  // embedding stays memory-mapped (no copy); ternary weights are repacked into the kernel layout.
  // Latent (non-ternary) float projections are ternarized for the BitNet architectures (as they do at run time)
  // and refused for "llama" unless options.quantize.
  static Model load_gguf(const std::string& path, HeadType head = HeadType::f16);
  static Model load_gguf(const std::string& path, const LoadOptions& options);
  // Loads a Hugging Face directory (config.json + model.safetensors or a sharded index): BitNetForCausalLM
  // (2B4T), 1bitLLM BitnetForCausalLM and Llama-architecture ternary models, packed uint8 + weight_scale or
  // latent weights (ternarized with absmean, as transformers does at run time).
  // Quantization follows the checkpoint: quantization_config (transformers' BitNet integration) or 1bitLLM's
  // BitnetForCausalLM (which quantizes in its own modeling code) mean BitNet arithmetic; any other checkpoint
  // is refused unless options.quantize. `notes` (optional) receives what loading decided.
  static Model load_hf(const std::string& dir, const LoadOptions& options = {}, std::vector<std::string>* notes = nullptr);
  // An ONNX file (bitnet/onnx.h: bitnet's export, or a torch.onnx export of a transformers model with its
  // config.json beside it), converted through a temporary GGUF as load_hf does.
  static Model load_onnx(const std::string& path, const LoadOptions& options = {}, std::vector<std::string>* notes = nullptr);
  // A GGUF file, an ONNX file, or a Hugging Face checkpoint: its directory, its config.json, a model*.safetensors file in it
  // or its model.safetensors.index.json. Anything else (a FIFO, a device, a missing path) is refused by name.
  static Model load(const std::string& path, const LoadOptions& options = {}, std::vector<std::string>* notes = nullptr);
  static Model load(const std::string& path, HeadType head) { return load(path, LoadOptions{head, false}); }
  // Writes the model as GGUF with ternary projections in `ternary_type` (TQ2_0, TQ1_0 or I2_S) that
  // load_gguf reads back (TQ* store the scale as f16, so exactness needs f16-representable scales).
  // `extra` keys (e.g. a tokenizer's tokenizer.ggml.* metadata) are written as they are.
  void save_gguf(const std::string& path, GgmlType ternary_type,
                 const std::vector<std::pair<std::string, GgufValue>>& extra = {}) const;
  // A model from weights in memory (a trained nn::CausalLM, see bitnet/export.h): `embedding` [vocab, hidden]
  // f32 or f16 (kept as f16, as in the files); `head` [vocab, hidden], or an empty Tensor for a tied head.
  // Shapes are checked against `config`, naming the layer and tensor.
  static Model from_weights(const TransformerConfig& config, const Tensor& embedding, std::vector<LayerWeights> layers,
                            std::vector<float> output_norm, const Tensor& head = Tensor(), HeadType head_type = HeadType::f16);
  // Random ternary weights and a random embedding with this shape (benchmarks and tests).
  // progress(layers done, layers), may be null: a 2B-parameter shape takes half a minute.
  static Model random(const TransformerConfig& config, uint64_t seed = 1, HeadType head = HeadType::f16,
                      const std::function<void(int64_t, int64_t)>& progress = nullptr,
                      TernaryPacking packing = TernaryPacking::two_bit);

  const TransformerConfig& config() const { return config_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const Tensor& embedding() const { return embedding_; }  // [vocab, hidden], f16 or f32
  const std::vector<float>& output_norm() const { return output_norm_; }
  HeadType head_type() const { return head_type_; }
  const Tensor& head_f16() const { return head_f16_; }    // [vocab, hidden] f16 (tied: the embedding)
  const Int8Matrix& head_int8() const { return head_int8_; }
  const Int4Matrix& head_int4() const { return head_int4_; }
  size_t ternary_bytes() const;  // kernel-layout bytes of all ternary matrices
  TernaryPacking ternary_packing() const;  // the layout of the ternary matrices (the loader uses one for all)
  size_t head_bytes() const;     // bytes the head reads per token
  int64_t parameter_count() const;
  std::string description;       // e.g. the file name, for `bitnet bench`

 private:
  void finish_head(HeadType head);
  TransformerConfig config_;
  std::vector<LayerWeights> layers_;
  Tensor embedding_;
  std::vector<float> output_norm_;
  HeadType head_type_ = HeadType::f16;
  Tensor head_f16_;
  Int8Matrix head_int8_;
  Int4Matrix head_int4_;
};

}  // namespace bitnet
