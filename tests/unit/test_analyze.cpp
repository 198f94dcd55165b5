// bitnet analyze's numbers: weight errors are the quantizer's, flips count exactly the changed ternary codes,
// output errors come from the layer's real inputs, and the ranking puts the most damaged layer first.
#include <bitnet/analyze.h>
#include <gtest/gtest.h>

#include <cmath>

namespace bitnet {
namespace {

nn::ModelConfig tiny() {
  nn::ModelConfig c;
  c.vocab = 50;
  c.hidden = 32;
  c.ffn = 48;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  return c;
}

Tensor sample_ids() {
  Tensor ids = Tensor::empty({2, 16}, DType::i32);
  for (int64_t i = 0; i < ids.numel(); ++i) ids.data_as<int32_t>()[i] = static_cast<int32_t>((i * 7 + 3) % 50);
  return ids;
}

TEST(Analyze, WeightErrorsZerosFlipsAndRanking) {
  nn::QuantPolicy policy;  // layer 1's attention stays full precision: exact outputs, ranked last
  policy.overrides.push_back({"model.layers.1.self_attn.", nn::QuantSpec::none(), nn::QuantSpec::none()});
  nn::CausalLM now(tiny(), policy, 3), before(tiny(), policy, 3);
  // Flip exactly 3 ternary codes of layer 0's up_proj: weights far from any threshold, moved across zero.
  auto sd = now.state_dict();
  Tensor& w = sd.at("model.layers.0.mlp.up_proj.weight");
  const Tensor q = nn::fake_quantize(w, nn::QuantSpec::ternary()).contiguous();
  int flipped = 0;
  for (int64_t i = 0; i < w.numel() && flipped < 3; ++i) {
    if (q.data_as<float>()[i] != 0.0f) {
      w.data_as<float>()[i] = -w.data_as<float>()[i];  // -1 <-> +1, mean|W| unchanged
      ++flipped;
    }
  }
  now.load_state_dict(sd);

  const auto layers = train::analyze_model(now, sample_ids(), &before);
  ASSERT_EQ(layers.size(), 14u);
  for (size_t i = 1; i < layers.size(); ++i) EXPECT_LE(layers[i - 1].output.sqnr_db, layers[i].output.sqnr_db);
  for (const auto& a : layers) {
    const bool fp = a.name.find("layers.1.self_attn") != std::string::npos;
    EXPECT_EQ(a.flips, a.name == "model.layers.0.mlp.up_proj" ? 3 : 0) << a.name;
    if (fp) {
      EXPECT_TRUE(std::isinf(a.output.sqnr_db)) << a.name;
      EXPECT_EQ(a.zero_fraction, 0.0) << a.name;
      continue;
    }
    EXPECT_GT(a.zero_fraction, 0.05) << a.name;  // absmean ternary of Gaussian weights: about 31% zeros
    EXPECT_LT(a.zero_fraction, 0.6) << a.name;
    EXPECT_GT(a.output.cosine, 0.5) << a.name;
    EXPECT_LT(a.output.cosine, 1.0) << a.name;
    EXPECT_TRUE(std::isfinite(a.output.sqnr_db)) << a.name;
  }
  // Weight errors are quant_error(W, Q(W)) of that layer.
  const Tensor wk = now.layers[0]->self_attn->k_proj->weight.value();
  const QuantError e = quant_error(wk, nn::fake_quantize(wk, nn::QuantSpec::ternary()));
  for (const auto& a : layers)
    if (a.name == "model.layers.0.self_attn.k_proj") {
      EXPECT_DOUBLE_EQ(a.weight.mse, e.mse);
      EXPECT_DOUBLE_EQ(a.weight.sqnr_db, e.sqnr_db);
      EXPECT_EQ(a.rows, 16);  // kv_heads * head_dim
      EXPECT_EQ(a.cols, 32);
    }
  EXPECT_NE(train::format_analysis(layers).find("3 (0.20%)"), std::string::npos) << train::format_analysis(layers);

  // The trainer's packed snapshots count the same 3 flips among every projection weight, 2 bits each.
  const train::SignClasses a = train::quantized_sign_classes(before), b = train::quantized_sign_classes(now);
  int64_t weights = 0;
  for (const auto& l : layers) weights += l.rows * l.cols;
  EXPECT_EQ(a.count, weights);
  EXPECT_EQ(a.packed.size(), static_cast<size_t>((weights + 3) / 4));
  EXPECT_DOUBLE_EQ(train::flipped_fraction(a, b), 3.0 / static_cast<double>(weights));
  EXPECT_EQ(train::flipped_fraction(b, b), 0.0);
  // A weight moved to zero is a flip too (+ -> 0), and the last, partly used byte counts only real weights.
  train::SignClasses c = b;
  c.packed.back() ^= 0x01;  // the first weight of the last byte: + <-> 0 or 0 <-> +, or - -> a third state
  EXPECT_DOUBLE_EQ(train::flipped_fraction(b, c), 1.0 / static_cast<double>(weights));
}

}  // namespace
}  // namespace bitnet
