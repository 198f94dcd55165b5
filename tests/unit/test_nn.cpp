// Modules: BitLinear's forward and STE gradients against a naive computation, the causal LM's parameter
// names, causality, state-dict round trips, the mixed-precision policy, lambda phase-in, and a finite-
// difference check of the whole full-precision model.
#include <bitnet/nn.h>
#include <gtest/gtest.h>

#include <cmath>

#include "grad_check.h"

namespace bitnet::test {
namespace {

using autograd::Var;
using nn::QuantSpec;

nn::ModelConfig tiny_config() {
  nn::ModelConfig c;
  c.vocab = 11;
  c.hidden = 8;
  c.ffn = 12;
  c.layers = 2;
  c.heads = 2;
  c.kv_heads = 1;
  return c;
}

Tensor ids_tensor(const std::vector<int32_t>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::i32);
  std::copy(v.begin(), v.end(), t.data_as<int32_t>());
  return t;
}

TEST(NN, BitLinearForwardAndSteGradients) {
  std::mt19937 rng(31);
  nn::InitRng init(7);
  nn::BitLinear layer(6, 4, init, {});
  const Tensor x = random_tensor({2, 3, 6}, rng);
  Var xv = Var::parameter(x);
  const Var y = layer.forward(xv);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));

  // Naive: RMSNorm (gain 1), per-token absmax int8, absmean ternary weights, then the product, in double.
  const Tensor w = layer.weight.value();
  double mean_abs = 0.0;
  for (float v : w.to_vector()) mean_abs += std::fabs(v);
  const float winv = 1.0f / static_cast<float>(mean_abs / 24.0);
  std::vector<double> xq(36);
  for (int64_t r = 0; r < 6; ++r) {
    double ss = 0.0;
    for (int64_t c = 0; c < 6; ++c) ss += x.at({r / 3, r % 3, c}) * x.at({r / 3, r % 3, c});
    const double rinv = 1.0 / std::sqrt(ss / 6.0 + 1e-5);
    float amax = 0.0f;
    std::vector<float> n(6);
    for (int64_t c = 0; c < 6; ++c) amax = std::max(amax, std::fabs(n[c] = static_cast<float>(x.at({r / 3, r % 3, c}) * rinv)));
    for (int64_t c = 0; c < 6; ++c) xq[r * 6 + c] = std::nearbyint(n[c] * 127.0f / amax) / (127.0f / amax);
  }
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t o = 0; o < 4; ++o) {
      double acc = 0.0;
      for (int64_t c = 0; c < 6; ++c)
        acc += xq[r * 6 + c] * (std::clamp(std::nearbyint(static_cast<float>(w.at({o, c})) * winv), -1.0f, 1.0f) / winv);
      EXPECT_NEAR(y.value().at({r / 3, r % 3, o}), acc, 1e-4);
    }

  // STE: dL/dW = g^T x_q exactly as if the quantized activations were the input.
  const Tensor g = random_tensor({2, 3, 4}, rng);
  y.backward(g);
  for (int64_t o = 0; o < 4; ++o)
    for (int64_t c = 0; c < 6; ++c) {
      double acc = 0.0;
      for (int64_t r = 0; r < 6; ++r) acc += g.at({r / 3, r % 3, o}) * xq[r * 6 + c];
      EXPECT_NEAR(layer.weight.grad().at({o, c}), acc, 1e-4);
    }
  EXPECT_TRUE(xv.grad().defined());
  EXPECT_TRUE(layer.norm_weight.grad().defined());
}

TEST(NN, BitLinearWithoutQuantizationMatchesFiniteDifferences) {
  // With quantization off the layer is differentiable, so the norm + linear path can be checked numerically.
  std::mt19937 rng(32);
  nn::InitRng init(8);
  nn::BitLinearOptions o;
  o.weight_quant = QuantSpec::none();
  o.act_quant = QuantSpec::none();
  o.init_std = 0.5;
  auto layer = std::make_shared<nn::BitLinear>(5, 3, init, o);
  check_gradients([&](const std::vector<Var>& v) { return layer->forward(v[0]); }, {random_tensor({4, 5}, rng)},
                  rng, {}, "BitLinear input gradient");
}

TEST(NN, CausalLMNamesShapesAndCount) {
  const nn::ModelConfig c = tiny_config();
  nn::CausalLM model(c, nn::QuantPolicy::bitnet_b158(), 1);
  const auto params = model.named_parameters();
  std::vector<std::string> names;
  for (const auto& p : params) names.push_back(p.name);
  const std::vector<std::string> first = {"model.embed_tokens.weight",
                                          "model.layers.0.input_layernorm.weight",
                                          "model.layers.0.self_attn.q_proj.weight",
                                          "model.layers.0.self_attn.k_proj.weight",
                                          "model.layers.0.self_attn.v_proj.weight",
                                          "model.layers.0.self_attn.attn_sub_norm.weight",
                                          "model.layers.0.self_attn.o_proj.weight",
                                          "model.layers.0.post_attention_layernorm.weight",
                                          "model.layers.0.mlp.gate_proj.weight",
                                          "model.layers.0.mlp.up_proj.weight",
                                          "model.layers.0.mlp.ffn_sub_norm.weight",
                                          "model.layers.0.mlp.down_proj.weight"};
  ASSERT_GE(names.size(), first.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 12), first);
  EXPECT_EQ(names.back(), "model.norm.weight");  // tied embeddings: no lm_head
  // 11*8 embed + per layer (2*8 norms + 64 q + 2*32 kv + 8 sub + 64 o + 3*96 mlp + 12 sub) + 8 final norm.
  EXPECT_EQ(model.parameter_count(), 88 + 2 * (16 + 64 + 64 + 8 + 64 + 288 + 12) + 8);
  EXPECT_EQ(model.forward(ids_tensor({1, 2, 3, 4, 5, 6}, {2, 3})).shape(), (Shape{2, 3, 11}));
  nn::ModelConfig bad = c;
  bad.kv_heads = 3;
  EXPECT_THROW(nn::CausalLM model_bad(bad), Error);
}

TEST(NN, CausalLMIsCausal) {
  nn::CausalLM model(tiny_config(), nn::QuantPolicy::bitnet_b158(), 2);
  const Tensor a = model.forward(ids_tensor({3, 1, 4, 1, 5}, {1, 5})).value();
  const Tensor b = model.forward(ids_tensor({3, 1, 4, 9, 2}, {1, 5})).value();
  // Positions before the first change see identical logits; a later one differs.
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t v = 0; v < 11; ++v) EXPECT_EQ(a.at({0, t, v}), b.at({0, t, v}));
  double diff = 0.0;
  for (int64_t v = 0; v < 11; ++v) diff += std::fabs(a.at({0, 4, v}) - b.at({0, 4, v}));
  EXPECT_GT(diff, 0.0);
}

TEST(NN, StateDictRoundTripAndStrictLoad) {
  nn::CausalLM a(tiny_config(), nn::QuantPolicy::bitnet_b158(), 3), b(tiny_config(), nn::QuantPolicy::bitnet_b158(), 4);
  const Tensor ids = ids_tensor({1, 2, 3, 4}, {1, 4});
  EXPECT_NE(a.forward(ids).value().to_vector(), b.forward(ids).value().to_vector());
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(a.forward(ids).value().to_vector(), b.forward(ids).value().to_vector());
  auto state = a.state_dict();
  state.erase("model.norm.weight");
  state["model.extra"] = Tensor::ones({1});
  try {
    b.load_state_dict(state);
    FAIL() << "expected a strict-load error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing [model.norm.weight]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unexpected [model.extra]"), std::string::npos) << e.what();
  }
  b.load_state_dict(state, /*strict=*/false);
  state = a.state_dict();
  state["model.norm.weight"] = Tensor::ones({3});
  EXPECT_THROW(b.load_state_dict(state), Error);
  b.eval();
  EXPECT_FALSE(b.is_training());
  EXPECT_FALSE(b.layers[1]->mlp->down_proj->is_training());
}

TEST(NN, MixedPrecisionPolicyAndLambda) {
  nn::QuantPolicy policy;
  policy.overrides.push_back({"model.layers.0.", QuantSpec::symmetric(8, nn::Granularity::per_row),
                              QuantSpec::int8_per_token()});
  nn::CausalLM model(tiny_config(), policy, 5);
  EXPECT_EQ(model.layers[0]->self_attn->q_proj->options().weight_quant.bits, 8);
  EXPECT_EQ(model.layers[0]->mlp->down_proj->options().weight_quant.scheme, nn::QuantScheme::symmetric);
  EXPECT_EQ(model.layers[1]->mlp->down_proj->options().weight_quant.scheme, nn::QuantScheme::ternary);

  // lambda = 0 is the full-precision model (same seed, same init).
  nn::CausalLM qat(tiny_config(), nn::QuantPolicy::bitnet_b158(), 6), fp(tiny_config(), nn::QuantPolicy::full_precision(), 6);
  const Tensor ids = ids_tensor({1, 2, 3, 4, 5}, {1, 5});
  EXPECT_NE(qat.forward(ids).value().to_vector(), fp.forward(ids).value().to_vector());
  qat.set_quant_lambda(0.0f);
  EXPECT_EQ(qat.forward(ids).value().to_vector(), fp.forward(ids).value().to_vector());
  EXPECT_THROW(qat.set_quant_lambda(2.0f), Error);
}

TEST(NN, FullPrecisionModelGradientsMatchFiniteDifferences) {
  nn::ModelConfig c = tiny_config();
  c.init_std = 0.3;  // large enough weights that every path carries a visible gradient
  c.tie_embeddings = false;
  c.activation = nn::Activation::silu;
  nn::CausalLM model(c, nn::QuantPolicy::full_precision(), 9);
  const Tensor ids = ids_tensor({1, 7, 3, 3, 0, 10, 2, 5}, {2, 4});
  const Tensor targets = ids_tensor({7, 3, 3, 0, 10, 2, 5, -1}, {2, 4});
  model.zero_grad();
  model.loss(ids, targets).backward();
  int checked = 0;
  for (const auto& p : model.named_parameters()) {
    Tensor value = p.var.value();
    float* data = value.data_as<float>();
    const Tensor grad = p.var.grad();
    ASSERT_TRUE(grad.defined()) << p.name;
    // A few elements per parameter keep the check fast; the stride visits different rows and columns.
    for (int64_t j = 0; j < value.numel(); j += std::max<int64_t>(1, value.numel() / 5)) {
      const float saved = data[j];
      auto loss_at = [&](float v) {
        data[j] = v;
        autograd::NoGradGuard ng;
        return model.loss(ids, targets).item();
      };
      const double eps = 1e-3;
      const double numeric = (loss_at(saved + eps) - loss_at(saved - eps)) / (2 * eps);
      data[j] = saved;
      const double analytic = grad.data_as<float>()[j];
      EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p.name << "[" << j << "] analytic " << analytic << " numeric " << numeric;
      ++checked;
    }
  }
  EXPECT_GT(checked, 60);
}

}  // namespace
}  // namespace bitnet::test
