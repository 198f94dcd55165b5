// Golden test against PyTorch (llm.c's test_gpt2 pattern): a tiny BitNet b1.58 LM's logits, loss, every
// parameter gradient, and the losses of 10 AdamW steps with clipping must match what
// tests/golden/make_bitnet_golden.py computes with torch for the same weights and the same BitLinear STE
// definition. The committed golden file is always checked; when the venv has torch, the script is run
// again and its fresh output checked too (otherwise that test skips, saying so).
#include <bitnet/train.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace bitnet::test {
namespace {

struct Diff {
  double max_abs = 0.0;
  double max_ref = 0.0;
};

Diff compare(const Tensor& got, const Tensor& want, const std::string& what) {
  EXPECT_EQ(got.shape(), want.shape()) << what;
  Diff d;
  if (got.shape() != want.shape()) return d;
  const auto g = got.to_vector(), w = want.to_vector();
  for (size_t i = 0; i < g.size(); ++i) {
    d.max_abs = std::max(d.max_abs, std::fabs(static_cast<double>(g[i]) - w[i]));
    d.max_ref = std::max(d.max_ref, std::fabs(static_cast<double>(w[i])));
  }
  return d;
}

Tensor as_ids(const Tensor& f) {
  Tensor ids = Tensor::empty(f.shape(), DType::i32);
  const auto v = f.to_vector();
  for (size_t i = 0; i < v.size(); ++i) ids.data_as<int32_t>()[i] = static_cast<int32_t>(v[i]);
  return ids;
}

void check_against(const std::string& path) {
  std::map<std::string, std::string> meta;
  const auto g = train::read_safetensors_f32(path, &meta);
  const auto cfg = nlohmann::json::parse(meta.at("config"));
  const auto adam = nlohmann::json::parse(meta.at("adamw"));
  nn::ModelConfig c;
  c.vocab = cfg.at("vocab_size");
  c.hidden = cfg.at("hidden_size");
  c.ffn = cfg.at("intermediate_size");
  c.layers = cfg.at("num_layers");
  c.heads = cfg.at("num_heads");
  c.kv_heads = cfg.at("num_kv_heads");
  c.rope_theta = cfg.at("rope_theta");
  c.norm_eps = cfg.at("rms_norm_eps");
  c.tie_embeddings = cfg.at("tie_embeddings");
  ASSERT_EQ(cfg.at("activation"), "relu2");

  nn::CausalLM model(c, nn::QuantPolicy::bitnet_b158(), 0);
  std::map<std::string, Tensor> init;
  for (const auto& [name, t] : g)
    if (name.rfind("init.", 0) == 0) init.emplace(name.substr(5), t);
  model.load_state_dict(init);  // strict: the two models have exactly the same parameters
  const Tensor ids = as_ids(g.at("input_ids")), targets = as_ids(g.at("targets"));

  // Logits, loss and every gradient to 1e-5 (training.md §6.1's bar). Measured on x86-64 with OpenBLAS and
  // torch 2.15 CPU: about 2e-7 everywhere, i.e. f32 rounding in a different order; a wrong formula or a
  // flipped quantization level is off by orders of magnitude more.
  const autograd::Var logits = model.forward(ids);
  const Diff dl = compare(logits.value(), g.at("logits"), "logits");
  EXPECT_LE(dl.max_abs, 1e-5) << "logits (largest |logit| " << dl.max_ref << ")";
  const autograd::Var loss = autograd::cross_entropy(logits, targets);
  EXPECT_NEAR(loss.item(), g.at("loss").item(), 1e-5);
  model.zero_grad();
  loss.backward();
  double worst_grad = 0.0;
  for (const auto& p : model.named_parameters()) {
    const Diff d = compare(p.var.grad(), g.at("grad." + p.name), p.name);
    EXPECT_LE(d.max_abs, 1e-5) << "gradient of " << p.name << " (largest " << d.max_ref << ")";
    worst_grad = std::max(worst_grad, d.max_abs);
  }

  // Ten AdamW steps with clipping on the same batch.
  optim::AdamW opt(optim::default_param_groups(model), {adam.at("lr"), adam.at("betas")[0], adam.at("betas")[1],
                                                        adam.at("eps"), adam.at("weight_decay")});
  const std::vector<float> want = g.at("adamw_losses").to_vector();
  double worst_loss = 0.0;
  for (size_t step = 0; step < want.size(); ++step) {
    opt.zero_grad();
    autograd::Var l = model.loss(ids, targets);
    l.backward();
    optim::clip_grad_norm(model.parameters(), adam.at("clip"));
    opt.step();
    worst_loss = std::max(worst_loss, std::fabs(l.item() - want[step]));
    EXPECT_NEAR(l.item(), want[step], 1e-5) << "AdamW step " << step;
  }
  EXPECT_LT(want.back(), want.front() - 0.1);  // the reference itself learned something
  std::printf("[ golden   ] %s (torch %s): max |logit diff| %.2e, max |grad diff| %.2e, max |loss diff| over %zu "
              "AdamW steps %.2e\n",
              std::filesystem::path(path).filename().c_str(), meta["torch"].c_str(), dl.max_abs, worst_grad,
              want.size(), worst_loss);
}

TEST(Golden, CommittedPyTorchReference) { check_against(BITNET_GOLDEN_DIR "/bitnet_tiny.safetensors"); }

TEST(Golden, FreshPyTorchReference) {
  const std::string py = BITNET_PYTHON;
  if (!std::filesystem::exists(py) || std::system((py + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "torch is not installed in .venv; the committed golden file was still checked. To re-verify: "
                 << py << " -m pip install torch";
  const std::string out =
      (std::filesystem::temp_directory_path() / ("bitnet_golden_" + std::to_string(::getpid()) + ".safetensors")).string();
  const std::string cmd = py + " " BITNET_GOLDEN_DIR "/make_bitnet_golden.py " + out + " >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  check_against(out);
  std::remove(out.c_str());
}

}  // namespace
}  // namespace bitnet::test
