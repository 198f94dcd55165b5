// Training pieces: schedule values at the recipe's landmark steps, AdamW against a hand computation,
// clipping, deterministic data order, safetensors checkpoints, a tiny ternary model that learns a fixed
// text, and bit-identical resume from a checkpoint.
#include <bitnet/train.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

namespace bitnet::test {
namespace {

using train::TwoStageSchedule;

TEST(Train, TwoStageScheduleLandmarks) {
  TwoStageSchedule s;
  s.peak_lr = 1.5e-3;
  s.warmup_steps = 10;
  s.total_steps = 100;
  s.stage1_end_ratio = 0.8;
  EXPECT_DOUBLE_EQ(s(0).lr, 1.5e-4);  // warmup: (step + 1) / warmup of the peak
  EXPECT_DOUBLE_EQ(s(9).lr, 1.5e-3);  // end of warmup: the peak
  EXPECT_DOUBLE_EQ(s(10).lr, 1.5e-3);
  EXPECT_NEAR(s(49).lr, 1.5e-3 * (1.0 - 0.2 * 39.0 / 40.0), 1e-15);  // 50% - 1: almost at 0.8 peak
  EXPECT_DOUBLE_EQ(s(49).weight_decay, 0.1);
  EXPECT_DOUBLE_EQ(s(50).lr, 1.0e-3);  // 50%: the drop to 2/3 of the peak
  EXPECT_DOUBLE_EQ(s(50).weight_decay, 0.0);
  EXPECT_NEAR(s(99).lr, 1.5e-5, 1e-15);  // end: final_ratio of the peak
  s.shape = train::DecayShape::cosine;
  EXPECT_DOUBLE_EQ(s(50).lr, 1.0e-3);
  EXPECT_NEAR(s(74).lr, 1.5e-5 + (1.0e-3 - 1.5e-5) * 0.5 * (1.0 + std::cos(M_PI * 24.0 / 49.0)), 1e-15);
  s.warmup_steps = 60;
  EXPECT_THROW(s(0), Error);

  // 2B4T's stage-1 weight decay: a cosine from the peak at step 0 to 0 at the boundary, then stage 2's 0.
  s.warmup_steps = 10;
  s.stage1_wd_cosine = true;
  EXPECT_DOUBLE_EQ(s(0).weight_decay, 0.1);
  EXPECT_NEAR(s(25).weight_decay, 0.05, 1e-15);
  EXPECT_NEAR(s(49).weight_decay, 0.1 * 0.5 * (1.0 + std::cos(M_PI * 49.0 / 50.0)), 1e-15);
  EXPECT_LT(s(49).weight_decay, 1e-3);
  EXPECT_DOUBLE_EQ(s(50).weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(s(9).lr, 1.5e-3);  // the learning rate does not change
}

TEST(Train, CosineAndLambdaSchedules) {
  train::CosineSchedule c{1e-3, 4, 105, 1e-5, 0.05};
  EXPECT_DOUBLE_EQ(c(1).lr, 5e-4);
  EXPECT_DOUBLE_EQ(c(4).lr, 1e-3);
  EXPECT_NEAR(c(54).lr, 1e-5 + (1e-3 - 1e-5) * 0.5, 1e-12);  // halfway through the decay (steps 4..104)
  EXPECT_NEAR(c(104).lr, 1e-5, 1e-15);
  EXPECT_DOUBLE_EQ(c(104).weight_decay, 0.05);

  train::LambdaSchedule lin{1000, train::LambdaShape::linear};
  EXPECT_EQ(lin(0), 0.0f);
  EXPECT_EQ(lin(250), 0.25f);
  EXPECT_EQ(lin(5000), 1.0f);
  EXPECT_EQ(train::LambdaSchedule{}(0), 1.0f);  // no warmup: quantized from the start
  for (auto shape : {train::LambdaShape::exponential, train::LambdaShape::sigmoid}) {
    train::LambdaSchedule l{100, shape, 6.0};
    EXPECT_NEAR(l(0), 0.0f, 1e-6);
    EXPECT_NEAR(l(100), 1.0f, 1e-6);
    for (int s = 1; s <= 100; ++s) EXPECT_GE(l(s), l(s - 1));
  }
  EXPECT_LT(train::LambdaSchedule({100, train::LambdaShape::exponential, 6.0})(50), 0.1f);
}

TEST(Train, AdamWMatchesHandComputationAndGroups) {
  nn::ModelConfig c;
  c.vocab = 5, c.hidden = 4, c.ffn = 4, c.layers = 1, c.heads = 2, c.kv_heads = 2;
  nn::CausalLM model(c, nn::QuantPolicy::bitnet_b158(), 3);
  const auto groups = optim::default_param_groups(model);
  ASSERT_EQ(groups.size(), 2u);
  for (const auto& p : groups[1].params)  // norms and the embedding never decay
    EXPECT_TRUE(p.name.find("norm") != std::string::npos || p.name.find("embed") != std::string::npos) << p.name;
  for (const auto& p : groups[0].params) EXPECT_NE(p.name.find("proj"), std::string::npos) << p.name;

  // Two scalar-ish parameters, one per group, three steps with changing gradients, against doubles.
  autograd::Var a = autograd::Var::parameter(Tensor::from_vector({0.5f, -1.0f}, {2}));
  autograd::Var b = autograd::Var::parameter(Tensor::from_vector({2.0f}, {1}));
  optim::AdamWOptions o{0.01, 0.9, 0.95, 1e-8, 0.1};
  optim::AdamW opt({{"decay", {{"a", a, nn::ParamKind::weight}}, true}, {"no_decay", {{"b", b, nn::ParamKind::norm}}, false}},
                   o);
  double pa[2] = {0.5, -1.0}, pb = 2.0, ma[2] = {0, 0}, va[2] = {0, 0}, mb = 0, vb = 0;
  const float grads[3][3] = {{0.3f, -0.2f, 1.0f}, {0.1f, 0.4f, -0.5f}, {-0.2f, 0.05f, 0.25f}};
  for (int t = 1; t <= 3; ++t) {
    a.set_grad(Tensor::from_vector({grads[t - 1][0], grads[t - 1][1]}, {2}));
    b.set_grad(Tensor::from_vector({grads[t - 1][2]}, {1}));
    opt.step();
    auto update = [&](double& p, double& m, double& v, double g, double wd) {
      p *= 1.0 - o.lr * wd;
      m = 0.9 * m + 0.1 * g;
      v = 0.95 * v + 0.05 * g * g;
      p -= o.lr / (1.0 - std::pow(0.9, t)) * m / (std::sqrt(v) / std::sqrt(1.0 - std::pow(0.95, t)) + 1e-8);
    };
    update(pa[0], ma[0], va[0], grads[t - 1][0], 0.1);
    update(pa[1], ma[1], va[1], grads[t - 1][1], 0.1);
    update(pb, mb, vb, grads[t - 1][2], 0.0);
    EXPECT_NEAR(a.value().at({0}), pa[0], 1e-6);
    EXPECT_NEAR(a.value().at({1}), pa[1], 1e-6);
    EXPECT_NEAR(b.value().at({0}), pb, 1e-6);
  }
  EXPECT_EQ(opt.step_count(), 3);
  EXPECT_THROW(optim::AdamW({}, {0.01, 1.0, 0.95, 1e-8, 0.1}), Error);
}

TEST(Train, ClipGradNorm) {
  autograd::Var a = autograd::Var::parameter(Tensor::zeros({2})), b = autograd::Var::parameter(Tensor::zeros({1}));
  a.set_grad(Tensor::from_vector({3.0f, 0.0f}, {2}));
  b.set_grad(Tensor::from_vector({4.0f}, {1}));
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm({a, b}, 10.0), 5.0);
  EXPECT_EQ(b.grad().at({0}), 4.0);  // under the limit: untouched
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm({a, b}, 1.0), 5.0);
  EXPECT_NEAR(a.grad().at({0}), 0.6, 1e-6);
  EXPECT_NEAR(b.grad().at({0}), 0.8, 1e-6);
}

TEST(Train, TokenBatcherIsDeterministicAndCoversEachEpoch) {
  std::vector<int32_t> tokens(101);
  for (int i = 0; i < 101; ++i) tokens[i] = i;
  train::TokenBatcher data(tokens, 3, 10, 42), same(tokens, 3, 10, 42), other(tokens, 3, 10, 43);
  ASSERT_EQ(data.windows(), 10);
  std::multiset<int32_t> starts;
  for (int64_t i = 0; i < 10; ++i) {  // 30 windows = 3 epochs of 10
    const train::Batch b = data.batch(i);
    EXPECT_EQ(b.inputs.to_vector(), same.batch(i).inputs.to_vector());
    for (int64_t k = 0; k < 3; ++k) {
      starts.insert(b.inputs.data_as<int32_t>()[k * 10]);
      for (int64_t t = 0; t < 10; ++t)
        EXPECT_EQ(b.targets.data_as<int32_t>()[k * 10 + t], b.inputs.data_as<int32_t>()[k * 10 + t] + 1);
    }
  }
  for (int w = 0; w < 10; ++w) EXPECT_EQ(starts.count(w * 10), 3u) << "window " << w;
  bool differs = false;
  for (int64_t i = 0; i < 4; ++i) differs = differs || data.batch(i).inputs.to_vector() != other.batch(i).inputs.to_vector();
  EXPECT_TRUE(differs);
  EXPECT_THROW(train::TokenBatcher(std::vector<int32_t>(5), 1, 10, 0), Error);
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()))).string();
}

TEST(Train, SafetensorsRoundTripAndBadFiles) {
  const std::string path = temp_path("bitnet_st_test.safetensors");
  std::map<std::string, Tensor> t = {{"a.weight", Tensor::from_vector({1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f}, {2, 3})},
                                     {"b", Tensor::from_vector({4.0f}, {1})}};
  train::write_safetensors_f32(path, t, {{"step", "17"}});
  std::map<std::string, std::string> meta;
  const auto back = train::read_safetensors_f32(path, &meta);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.at("a.weight").shape(), (Shape{2, 3}));
  EXPECT_EQ(back.at("a.weight").to_vector(), t.at("a.weight").to_vector());
  EXPECT_EQ(meta.at("step"), "17");
  // The layout: 8-byte little-endian header length, JSON, then data aligned to 8 bytes.
  std::ifstream in(path, std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(std::filesystem::file_size(path), 8 + n + 7 * 4);
  in.close();

  // Truncated data and a lying header length are refused with the file named.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  EXPECT_THROW(train::read_safetensors_f32(path, nullptr), Error);
  {
    std::ofstream bad(path, std::ios::binary | std::ios::trunc);
    const unsigned char huge[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    bad.write(reinterpret_cast<const char*>(huge), 8);
    bad << "{}";
  }
  try {
    train::read_safetensors_f32(path, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
  EXPECT_THROW(train::read_safetensors_f32(path, nullptr), Error);
}

// A fixed text, tokenized by characters (vocabulary = its distinct characters).
const char* kText =
    "the quick brown fox jumps over the lazy dog. a ternary weight is minus one, zero or plus one. "
    "the model learns with latent weights in full precision and rounds them in every forward pass. "
    "the gradient passes straight through the rounding. the quick brown fox jumps over the lazy dog again. "
    "small models learn small texts quickly when the learning rate is warm and the batches are shuffled. ";

std::vector<int32_t> char_tokens(int64_t& vocab) {
  const std::string text = kText;
  std::set<char> chars(text.begin(), text.end());
  std::vector<char> alphabet(chars.begin(), chars.end());
  vocab = static_cast<int64_t>(alphabet.size());
  std::vector<int32_t> out;
  for (char ch : text)
    out.push_back(static_cast<int32_t>(std::lower_bound(alphabet.begin(), alphabet.end(), ch) - alphabet.begin()));
  return out;
}

nn::ModelConfig tiny_lm(int64_t vocab) {
  nn::ModelConfig c;
  c.vocab = vocab;
  c.hidden = 32;
  c.ffn = 64;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  return c;
}

TEST(Train, TinyTernaryModelLearnsFixedText) {
  int64_t vocab = 0;
  const std::vector<int32_t> tokens = char_tokens(vocab);
  train::TokenBatcher data(tokens, 8, 32, 1);
  nn::CausalLM model(tiny_lm(vocab), nn::QuantPolicy::bitnet_b158(), 11);
  train::TwoStageSchedule sched;
  sched.peak_lr = 1e-2;
  sched.warmup_steps = 20;
  sched.total_steps = 300;
  train::TrainOptions opt;
  opt.total_steps = 300;
  opt.schedule = sched;
  train::Trainer trainer(model, data, opt);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<double> losses;
  while (!trainer.done()) losses.push_back(trainer.step().loss);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double last = 0.0;
  for (size_t i = losses.size() - 10; i < losses.size(); ++i) last += losses[i] / 10.0;
  std::printf("[ tiny LM  ] vocab %lld, %lld params, loss %.3f -> %.3f (mean of last 10) in 300 steps, %.2f s\n",
              static_cast<long long>(vocab), static_cast<long long>(model.parameter_count()), losses.front(), last,
              seconds);
  EXPECT_NEAR(losses.front(), std::log(static_cast<double>(vocab)), 0.3);  // untrained: about uniform
  // The text is small enough to memorize: from ln(29) = 3.37 the loss reaches ~0.02 by step 300 (x86-64,
  // OpenBLAS); the bound leaves room for other BLAS/ISA rounding paths.
  EXPECT_LT(last, 0.25);
  EXPECT_LT(trainer.evaluate(data, 4), 0.25);
}

TEST(Train, ResumeFromCheckpointIsBitIdentical) {
  int64_t vocab = 0;
  const std::vector<int32_t> tokens = char_tokens(vocab);
  train::TokenBatcher data(tokens, 4, 16, 5);
  train::TrainOptions opt;
  opt.total_steps = 24;
  opt.grad_accum = 2;
  opt.clip_norm = 0.5;  // small enough to clip
  opt.quant_lambda = {16, train::LambdaShape::linear};
  train::TwoStageSchedule sched;
  sched.peak_lr = 5e-3;
  sched.warmup_steps = 4;
  sched.total_steps = 24;
  opt.schedule = sched;

  nn::CausalLM straight_model(tiny_lm(vocab), nn::QuantPolicy::bitnet_b158(), 21);
  train::Trainer straight(straight_model, data, opt);
  std::vector<double> want;
  while (!straight.done()) want.push_back(straight.step().loss);

  const std::string path = temp_path("bitnet_resume.safetensors");
  {
    nn::CausalLM m(tiny_lm(vocab), nn::QuantPolicy::bitnet_b158(), 21);
    train::Trainer first(m, data, opt);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(first.step().loss, want[static_cast<size_t>(i)]);
    first.save(path);
  }
  // A fresh process would build the model from another seed and load everything from the file.
  nn::CausalLM resumed_model(tiny_lm(vocab), nn::QuantPolicy::bitnet_b158(), 999);
  train::Trainer resumed(resumed_model, data, opt);
  resumed.load(path);
  EXPECT_EQ(resumed.steps_done(), 10);
  EXPECT_EQ(resumed.optimizer().step_count(), 10);
  for (size_t i = 10; i < want.size(); ++i) {
    const train::StepResult r = resumed.step();
    EXPECT_EQ(r.step, static_cast<int64_t>(i));
    EXPECT_EQ(r.loss, want[i]) << "step " << i;  // bit-identical, not approximately equal
  }
  EXPECT_EQ(resumed_model.state_dict().at("model.norm.weight").to_vector(),
            straight_model.state_dict().at("model.norm.weight").to_vector());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace bitnet::test
