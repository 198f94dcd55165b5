#pragma once
// Training modules: a small PyTorch-like API (named parameters, train/eval, state dict) and the layers of
// a BitNet b1.58 causal LM. Parameters are autograd Vars holding f32 latent weights; BitLinear fake-
// quantizes weights and activations in the forward pass (QAT with the straight-through estimator).
//
// Parameter names follow the Hugging Face BitNet checkpoints (model.layers.0.self_attn.q_proj.weight, ...)
// so a trained state dict maps one-to-one onto the files the inference engine reads.
#include <bitnet/autograd.h>
#include <bitnet/model.h>
#include <bitnet/qat.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bitnet::nn {

using autograd::Var;

// What a parameter is, so optimizers can group them (no weight decay on norms and embeddings).
enum class ParamKind : uint8_t { weight, norm, embedding };

struct NamedParameter {
  std::string name;
  Var var;
  ParamKind kind;
};

// A deterministic generator for initialization (the same numbers on every platform, unlike
// std::normal_distribution): xoshiro256** seeded through splitmix64, normals by Box-Muller.
class InitRng {
 public:
  explicit InitRng(uint64_t seed);
  uint64_t next_u64();
  double uniform();  // [0, 1)
  double normal();   // N(0, 1)
  Tensor normal_tensor(const Shape& shape, double std);

 private:
  uint64_t s_[4];
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, depth first in registration order, with dotted names.
  std::vector<NamedParameter> named_parameters() const;
  std::vector<Var> parameters() const;
  int64_t parameter_count() const;  // elements

  void train(bool on = true);  // sets the mode on this module and all children
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

  // Copies of the parameter values by name.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values into the parameters (shapes must match). strict: every parameter must be present and no
  // unknown name may appear; the error lists what is missing or unexpected.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 protected:
  Var register_parameter(std::string name, Tensor init, ParamKind kind);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    children_.emplace_back(std::move(name), module);
    return module;
  }

 private:
  void collect(const std::string& prefix, std::vector<NamedParameter>& out) const;

  std::vector<NamedParameter> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// y = x W^T (no bias: BitNet uses none), full precision.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, InitRng& rng, double init_std = 0.02);
  Var forward(const Var& x) const;
  Var weight;
};

struct BitLinearOptions {
  QuantSpec weight_quant = QuantSpec::ternary();           // per-tensor absmean ternary
  QuantSpec act_quant = QuantSpec::int8_per_token();       // per-token absmax int8
  bool with_norm = true;  // RMSNorm (with a learnable gain) on the input, just before quantizing it
  float norm_eps = 1e-5f;
  double init_std = 0.02;
};

// BitNet b1.58's linear layer for training:
//   x_n = RMSNorm(x) (when with_norm); x_q = x_n + lambda (Qa(x_n) - x_n)  [STE]
//   w_q = W + lambda (Qw(W) - W)  [STE];  y = x_q w_q^T
// with W the latent f32 weight. In a transformer block several BitLinears share one preceding norm (the
// SubLN layout of the released models), which is BitLinear with with_norm = false after an RMSNorm.
class BitLinear : public Module {
 public:
  BitLinear(int64_t in_features, int64_t out_features, InitRng& rng, BitLinearOptions options = {});
  Var forward(const Var& x) const;
  // Phases quantization in (lambda in [0, 1]; 1 = fully quantized, 0 = full precision).
  void set_quant_lambda(float lambda);
  float quant_lambda() const { return lambda_; }
  const BitLinearOptions& options() const { return options_; }
  // Diagnostics (bitnet analyze): while set, forward() stores its input (after the norm, before quantizing)
  // in *sink. nullptr stops it.
  void capture_input(Tensor* sink) { capture_ = sink; }
  Var weight;
  Var norm_weight;  // defined when with_norm

 private:
  BitLinearOptions options_;
  float lambda_ = 1.0f;
  Tensor* capture_ = nullptr;
};

class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, InitRng& rng, double init_std = 0.02);
  Var forward(const Tensor& ids) const;  // ids: integer tensor [...] -> [..., dim]
  Var weight;
};

class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, float eps = 1e-5f);
  Var forward(const Var& x) const;
  Var weight;
  float eps;
};

using Activation = FfnActivation;  // relu2: relu(gate)^2 * up; silu: SwiGLU

// The architecture of a trained BitNet b1.58 causal LM: exactly the engine's TransformerConfig (the model
// `bitnet run` executes after export), plus what only training needs. The defaults are a tiny model.
// head_dim = 0 means hidden / heads (resolved by resolved()); arch is set from the activation on export
// ("bitnet-b1.58" for relu2, "bitnet" for SwiGLU: the names whose activation Model::load_gguf infers).
struct ModelConfig : TransformerConfig {
  bool tie_embeddings = true;  // lm_head shares the token embedding
  double init_std = 0.02;

  ModelConfig();
  explicit ModelConfig(const TransformerConfig& shape, bool tie = true, double std = 0.02);
  int64_t head_size() const { return head_dim > 0 ? head_dim : (heads > 0 ? hidden / heads : 0); }
  // The engine's config of this model: head_dim filled in, arch named from the activation.
  TransformerConfig resolved() const;
  void validate() const;  // throws with the field that is wrong
};

// Which quantizer each projection uses: a default for weights and activations, and overrides matched by
// parameter-path prefix (first match wins), e.g. keep the first and last layers at 8 bits.
struct QuantPolicy {
  struct Override {
    std::string prefix;  // e.g. "model.layers.0."
    QuantSpec weight;
    QuantSpec activation;
  };
  QuantSpec weight = QuantSpec::ternary();
  QuantSpec activation = QuantSpec::int8_per_token();
  std::vector<Override> overrides;

  static QuantPolicy bitnet_b158() { return {}; }
  static QuantPolicy full_precision() { return {QuantSpec::none(), QuantSpec::none(), {}}; }
  // The (weight, activation) specs for the projection at `path` ("model.layers.3.mlp.down_proj").
  std::pair<QuantSpec, QuantSpec> for_layer(const std::string& path) const;
};

// Causal self-attention with RoPE and GQA: q/k/v BitLinears read the (already normalized) input, the
// attention output passes attn_sub_norm before o_proj.
class Attention : public Module {
 public:
  Attention(const ModelConfig& config, const QuantPolicy& policy, const std::string& path, InitRng& rng);
  Var forward(const Var& x) const;  // x [B, T, hidden] -> [B, T, hidden]
  std::shared_ptr<BitLinear> q_proj, k_proj, v_proj, o_proj;
  std::shared_ptr<RMSNorm> attn_sub_norm;

 private:
  int64_t heads_, kv_heads_, head_dim_;
  double rope_theta_;
};

// Gated MLP: down(ffn_sub_norm(act(gate(x)) * up(x))).
class MLP : public Module {
 public:
  MLP(const ModelConfig& config, const QuantPolicy& policy, const std::string& path, InitRng& rng);
  Var forward(const Var& x) const;
  std::shared_ptr<BitLinear> gate_proj, up_proj, down_proj;
  std::shared_ptr<RMSNorm> ffn_sub_norm;

 private:
  Activation activation_;
};

// x + attn(input_layernorm(x)), then + mlp(post_attention_layernorm(x)).
class TransformerBlock : public Module {
 public:
  TransformerBlock(const ModelConfig& config, const QuantPolicy& policy, const std::string& path, InitRng& rng);
  Var forward(const Var& x) const;
  std::shared_ptr<RMSNorm> input_layernorm, post_attention_layernorm;
  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<MLP> mlp;
};

// Token embedding (full precision), transformer blocks, final norm, and the lm_head (full precision; the
// embedding itself when tie_embeddings).
class CausalLM : public Module {
 public:
  CausalLM(const ModelConfig& config, const QuantPolicy& policy = QuantPolicy::bitnet_b158(), uint64_t seed = 0);
  Var forward(const Tensor& ids) const;                        // ids i32 [B, T] -> logits [B, T, vocab]
  Var loss(const Tensor& ids, const Tensor& targets) const;    // mean next-token cross-entropy
  void set_quant_lambda(float lambda);                         // on every BitLinear
  const ModelConfig& config() const { return config_; }
  const QuantPolicy& policy() const { return policy_; }
  std::vector<std::shared_ptr<BitLinear>> bit_linears() const;

  std::shared_ptr<Embedding> embed_tokens;
  std::vector<std::shared_ptr<TransformerBlock>> layers;
  std::shared_ptr<RMSNorm> norm;
  std::shared_ptr<Linear> lm_head;  // null when tie_embeddings

 private:
  ModelConfig config_;
  QuantPolicy policy_;
};

}  // namespace bitnet::nn
