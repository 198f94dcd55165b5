// The BitNet b1.58 transformer: attention with RoPE and GQA, gated MLP, blocks, and the causal LM.
#include <bitnet/nn.h>

namespace bitnet::nn {

namespace A = autograd;

ModelConfig::ModelConfig() {
  arch = "bitnet-b1.58";
  vocab = 256;
  hidden = 64;
  ffn = 128;
  layers = 2;
  heads = 4;
  kv_heads = 4;
  head_dim = 0;
  context = 2048;
  norm_eps = 1e-5f;
  rope_theta = 10000.0f;
  activation = Activation::relu2;
  sub_norms = true;
}

ModelConfig::ModelConfig(const TransformerConfig& shape, bool tie, double std)
    : TransformerConfig(shape), tie_embeddings(tie), init_std(std) {}

TransformerConfig ModelConfig::resolved() const {
  TransformerConfig c = *this;
  c.head_dim = head_size();
  c.arch = activation == Activation::relu2 ? "bitnet-b1.58" : "bitnet";
  return c;
}

void ModelConfig::validate() const {
  BITNET_CHECK(vocab > 0 && hidden > 0 && ffn > 0 && layers > 0,
               "[ModelConfig] vocab_size, hidden_size, intermediate_size and num_layers must be positive, got {}, "
               "{}, {}, {}",
               vocab, hidden, ffn, layers);
  BITNET_CHECK(heads > 0 && (head_dim > 0 || hidden % heads == 0),
               "[ModelConfig] hidden_size ({}) must be a multiple of num_heads ({}) unless head_dim is given", hidden,
               heads);
  BITNET_CHECK(kv_heads > 0 && heads % kv_heads == 0,
               "[ModelConfig] num_heads ({}) must be a multiple of num_kv_heads ({})", heads, kv_heads);
  BITNET_CHECK(head_size() % 2 == 0, "[ModelConfig] head_dim ({}) must be even for RoPE", head_size());
  BITNET_CHECK(rope_theta > 0.0f && norm_eps > 0.0f, "[ModelConfig] rope_theta and rms_norm_eps must be positive");
  BITNET_CHECK(sub_norms, "[ModelConfig] training builds BitNet's SubLN layout; sub_norms must be true");
  resolved().validate();
}

std::pair<QuantSpec, QuantSpec> QuantPolicy::for_layer(const std::string& path) const {
  for (const auto& o : overrides)
    if (path.rfind(o.prefix, 0) == 0) return {o.weight, o.activation};
  return {weight, activation};
}

namespace {
std::shared_ptr<BitLinear> make_proj(int64_t in, int64_t out, const ModelConfig& config, const QuantPolicy& policy,
                                     const std::string& path, InitRng& rng) {
  const auto [wq, aq] = policy.for_layer(path);
  BitLinearOptions o;
  o.weight_quant = wq;
  o.act_quant = aq;
  o.with_norm = false;  // the block's shared RMSNorm precedes it
  o.norm_eps = config.norm_eps;
  o.init_std = config.init_std;
  return std::make_shared<BitLinear>(in, out, rng, o);
}
}  // namespace

Attention::Attention(const ModelConfig& config, const QuantPolicy& policy, const std::string& path, InitRng& rng)
    : heads_(config.heads), kv_heads_(config.kv_heads), head_dim_(config.head_size()),
      rope_theta_(config.rope_theta) {
  const int64_t c = config.hidden, q = heads_ * head_dim_, kv = kv_heads_ * head_dim_;
  q_proj = register_module("q_proj", make_proj(c, q, config, policy, path + "q_proj", rng));
  k_proj = register_module("k_proj", make_proj(c, kv, config, policy, path + "k_proj", rng));
  v_proj = register_module("v_proj", make_proj(c, kv, config, policy, path + "v_proj", rng));
  attn_sub_norm = register_module("attn_sub_norm", std::make_shared<RMSNorm>(q, config.norm_eps));
  o_proj = register_module("o_proj", make_proj(q, c, config, policy, path + "o_proj", rng));
}

Var Attention::forward(const Var& x) const {
  BITNET_CHECK(x.ndim() == 3, "[Attention] expects [batch, seq, hidden], got {}", shape_str(x.shape()));
  const int64_t b = x.size(0), t = x.size(1);
  // [batch, seq, heads, head_dim] throughout: attention reads each head in place, so nothing is transposed.
  const Var q = A::rope(A::reshape(q_proj->forward(x), {b, t, heads_, head_dim_}), rope_theta_);
  const Var k = A::rope(A::reshape(k_proj->forward(x), {b, t, kv_heads_, head_dim_}), rope_theta_);
  const Var v = A::reshape(v_proj->forward(x), {b, t, kv_heads_, head_dim_});
  const Var o = A::reshape(A::causal_attention(q, k, v, /*seq_major=*/true), {b, t, heads_ * head_dim_});
  return o_proj->forward(attn_sub_norm->forward(o));
}

MLP::MLP(const ModelConfig& config, const QuantPolicy& policy, const std::string& path, InitRng& rng)
    : activation_(config.activation) {
  const int64_t c = config.hidden, f = config.ffn;
  gate_proj = register_module("gate_proj", make_proj(c, f, config, policy, path + "gate_proj", rng));
  up_proj = register_module("up_proj", make_proj(c, f, config, policy, path + "up_proj", rng));
  ffn_sub_norm = register_module("ffn_sub_norm", std::make_shared<RMSNorm>(f, config.norm_eps));
  down_proj = register_module("down_proj", make_proj(f, c, config, policy, path + "down_proj", rng));
}

Var MLP::forward(const Var& x) const {
  const Var g = gate_proj->forward(x);
  const Var act = activation_ == Activation::relu2 ? A::relu2(g) : A::silu(g);
  return down_proj->forward(ffn_sub_norm->forward(act * up_proj->forward(x)));
}

TransformerBlock::TransformerBlock(const ModelConfig& config, const QuantPolicy& policy, const std::string& path,
                                   InitRng& rng) {
  input_layernorm = register_module("input_layernorm", std::make_shared<RMSNorm>(config.hidden, config.norm_eps));
  self_attn = register_module("self_attn", std::make_shared<Attention>(config, policy, path + "self_attn.", rng));
  post_attention_layernorm =
      register_module("post_attention_layernorm", std::make_shared<RMSNorm>(config.hidden, config.norm_eps));
  mlp = register_module("mlp", std::make_shared<MLP>(config, policy, path + "mlp.", rng));
}

Var TransformerBlock::forward(const Var& x) const {
  const Var h = x + self_attn->forward(input_layernorm->forward(x));
  return h + mlp->forward(post_attention_layernorm->forward(h));
}

namespace {
// A holder for the "model." prefix of the Hugging Face names.
class Backbone : public Module {
 public:
  template <class M>
  std::shared_ptr<M> add(std::string name, std::shared_ptr<M> m) {
    return register_module(std::move(name), std::move(m));
  }
};
}  // namespace

CausalLM::CausalLM(const ModelConfig& config, const QuantPolicy& policy, uint64_t seed)
    : config_(config), policy_(policy) {
  config_.validate();
  policy_.weight.validate();
  policy_.activation.validate();
  InitRng rng(seed);
  auto model = register_module("model", std::make_shared<Backbone>());
  embed_tokens = model->add("embed_tokens",
                            std::make_shared<Embedding>(config.vocab, config.hidden, rng, config.init_std));
  auto layer_list = model->add("layers", std::make_shared<Backbone>());
  for (int64_t i = 0; i < config.layers; ++i)
    layers.push_back(layer_list->add(std::to_string(i), std::make_shared<TransformerBlock>(
                                                            config, policy, fmt::format("model.layers.{}.", i), rng)));
  norm = model->add("norm", std::make_shared<RMSNorm>(config.hidden, config.norm_eps));
  if (!config.tie_embeddings)
    lm_head = register_module("lm_head", std::make_shared<Linear>(config.hidden, config.vocab, rng,
                                                                  config.init_std));
}

Var CausalLM::forward(const Tensor& ids) const {
  BITNET_CHECK(ids.ndim() == 2, "[CausalLM] expects token ids [batch, seq], got {}", ids.str());
  Var h = embed_tokens->forward(ids);
  for (const auto& layer : layers) h = layer->forward(h);
  h = norm->forward(h);
  return lm_head ? lm_head->forward(h) : A::linear(h, embed_tokens->weight);
}

Var CausalLM::loss(const Tensor& ids, const Tensor& targets) const {
  return A::cross_entropy(forward(ids), targets);
}

std::vector<std::shared_ptr<BitLinear>> CausalLM::bit_linears() const {
  std::vector<std::shared_ptr<BitLinear>> out;
  for (const auto& l : layers)
    for (const auto& p : {l->self_attn->q_proj, l->self_attn->k_proj, l->self_attn->v_proj, l->self_attn->o_proj,
                          l->mlp->gate_proj, l->mlp->up_proj, l->mlp->down_proj})
      out.push_back(p);
  return out;
}

void CausalLM::set_quant_lambda(float lambda) {
  for (const auto& p : bit_linears()) p->set_quant_lambda(lambda);
}

}  // namespace bitnet::nn
