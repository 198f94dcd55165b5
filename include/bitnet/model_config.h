#pragma once
// Hugging Face config.json and generation_config.json as typed, validated structs (formats.md §1).
#include <bitnet/rope.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

// How a checkpoint's per-linear `weight_scale` turns ternary values back into weights (formats.md §1.1.5).
enum class ScaleConvention : uint8_t {
  multiply,  // W ≈ W_t * weight_scale   (weight_scale = mean|W|; transformers AutoBitLinear, 2B4T)
  divide,    // W ≈ W_t / weight_scale   (weight_scale = 1/mean|W|; transformers BitLinear, the default class)
};
std::string_view scale_convention_name(ScaleConvention c);

struct QuantizationConfig {
  std::string quant_method;       // "bitnet"
  std::string linear_class;       // "autobitlinear" | "bitlinear" | "" (absent: transformers default bitlinear)
  std::string quantization_mode;  // "offline" (packed weights) | "online" (latent weights) | ""
  bool use_rms_norm = false;
  double rms_norm_eps = 1e-6;
  ScaleConvention scale_convention() const;  // autobitlinear => multiply, otherwise divide
};

struct ModelConfig {
  std::vector<std::string> architectures;  // e.g. {"BitNetForCausalLM"}
  std::string model_type;                  // "bitnet", "llama"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  std::string hidden_act = "silu";
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;     // top level (4.x) or rope_parameters.rope_theta (5.x); class default if absent
  RopeScaling rope_scaling;        // rope_scaling (4.x) or rope_parameters (5.x)
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config may give one id or a list
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype;
  std::optional<QuantizationConfig> quantization;
  // Keys this reader does not know and cannot rule out as changing the computation: callers print them.
  std::vector<std::string> warnings;

  // Whether transformers runs this checkpoint with BitNet arithmetic: it has quantization_config (transformers'
  // BitNet integration), or it is 1bitLLM's BitnetForCausalLM (which quantizes in its own modeling code).
  // Anything else runs in full precision there, so ternarizing it is done only when asked (--quantize).
  bool is_bitnet_checkpoint() const;
};

struct GenerationConfig {
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> pad_token_id;
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<int64_t> max_length;
  std::optional<int64_t> max_new_tokens;
  std::optional<double> repetition_penalty;
};

// Parse JSON text; `source` names the file in messages. Every field is type- and range-checked (sizes positive,
// heads dividing the hidden size, KV heads dividing heads, token ids in the vocabulary). Absent keys take the
// defaults of the transformers config class of the model_type (BitNetConfig: rope_theta 500000, rms_norm_eps
// 1e-5, relu2; LlamaConfig: 10000, 1e-6, silu). Keys that would change the computation in ways the engine does
// not implement (attention or MLP biases, partial rotary, sliding windows, unknown RoPE types, ...) are errors
// naming the key; keys it does not know at all are listed in `warnings`.
ModelConfig parse_model_config(std::string_view json_text, std::string_view source = "config.json");
GenerationConfig parse_generation_config(std::string_view json_text, std::string_view source = "generation_config.json");
ModelConfig load_model_config(const std::string& path);            // a config.json file or its directory
GenerationConfig load_generation_config(const std::string& path);  // a generation_config.json file

}  // namespace bitnet
