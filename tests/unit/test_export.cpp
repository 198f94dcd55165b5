// Export of a trained model: the inference Engine on the exported GGUF must compute the logits of the trainer's
// eval forward (nn::CausalLM), the file must carry the tokenizer, and the HF-style directory must convert back
// to the same model.
//
// Tolerance: the trainer and the engine compute the same function (ternary weights and scales taken from the
// QAT quantizer itself, int8 per-token activations), but not bit for bit: the engine keeps the embedding and the
// tied head in f16 (as the files store them) and the KV cache in f16, and sums in another order; a float that
// lands on the other side of an int8 rounding boundary then moves one activation code by one step. The test
// rounds the trainer's embedding to f16 first (the value the file holds), which leaves the last two sources:
// measured max |Δlogit| is 4e-4 of the logit range (mean 3e-5, loss 7e-5 nats/token). The bound, 1% of the
// logit range per logit, leaves room for a code flip or two on other CPUs and kernels, and is still far below
// what any real mismatch gives (a wrong scale, a transposed or shifted weight, a missing norm each move logits
// by tens of percent); mean |Δ| and the loss are held tighter.
#include <bitnet/bpe_train.h>
#include <bitnet/engine.h>
#include <bitnet/export.h>
#include <bitnet/model_files.h>
#include <bitnet/tokenizer.h>
#include <bitnet/train.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

namespace bitnet {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("bitnet_export_" + std::to_string(::getpid()) + "_" + name);
  fs::create_directories(p);
  return p.string();
}

std::string corpus() {
  std::string text;
  for (int i = 0; i < 30; ++i)
    text += "In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
            "darkness was upon the face of the deep. And God said, Let there be light: and there was light.\n";
  return text;
}

// A tiny model trained for a few steps on the corpus (so the weights are no longer the initialization), with
// its embedding rounded to f16 (what the GGUF stores).
struct Trained {
  BpeVocabulary vocab;
  std::unique_ptr<nn::CausalLM> lm;
  std::vector<int32_t> ids;
};

Trained train_tiny(const TransformerConfig& shape, int steps, bool tie = true) {
  Trained t;
  t.vocab = train_bpe(corpus(), {.vocab_size = 300});
  const std::string tok_dir = temp_dir("tok");
  write_bpe_tokenizer_json(t.vocab, tok_dir + "/tokenizer.json");
  t.ids = Tokenizer::from_hf(tok_dir + "/tokenizer.json")->encode(corpus(), false, false);
  fs::remove_all(tok_dir);  // each run has its own pid in the name: left behind, they pile up in /tmp
  nn::ModelConfig c(shape, tie);
  c.vocab = 300;
  t.lm = std::make_unique<nn::CausalLM>(c, nn::QuantPolicy::bitnet_b158(), 7);
  train::TokenBatcher data(t.ids, 4, 32, 1);
  train::TrainOptions o;
  o.total_steps = steps;
  o.schedule = train::CosineSchedule{.peak_lr = 3e-3, .warmup_steps = 2, .total_steps = steps};
  train::Trainer trainer(*t.lm, data, o);
  while (!trainer.done()) trainer.step();
  std::map<std::string, Tensor> sd = t.lm->state_dict();
  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight"})
    if (sd.count(name)) sd[name] = sd[name].to(DType::f16).to(DType::f32);
  t.lm->load_state_dict(sd);
  t.lm->eval();
  return t;
}

// Logits of every position: trainer [T, V] and engine [T, V].
void compare_logits(const nn::CausalLM& lm, const Model& model, const std::vector<int32_t>& ids, double* max_rel,
                    double* mean_abs, double* loss_diff) {
  const int64_t T = static_cast<int64_t>(ids.size()), V = lm.config().vocab;
  Tensor in = Tensor::empty({1, T}, DType::i32);
  std::copy(ids.begin(), ids.end(), in.data_as<int32_t>());
  Tensor ref;
  {
    autograd::NoGradGuard no_grad;
    ref = lm.forward(in).value().contiguous();
  }
  Engine engine(model, T);
  std::vector<BatchToken> batch;
  for (int64_t t = 0; t < T; ++t) batch.push_back({ids[static_cast<size_t>(t)], static_cast<int32_t>(t), 0, true});
  std::vector<float> got(static_cast<size_t>(T * V));
  engine.decode(batch, got.data());

  const float* r = ref.data_as<float>();
  float lo = r[0], hi = r[0];
  double max_abs = 0.0, sum_abs = 0.0, nll_ref = 0.0, nll_got = 0.0;
  for (int64_t i = 0; i < T * V; ++i) {
    lo = std::min(lo, r[i]);
    hi = std::max(hi, r[i]);
    const double d = std::fabs(static_cast<double>(r[i]) - got[static_cast<size_t>(i)]);
    max_abs = std::max(max_abs, d);
    sum_abs += d;
  }
  for (int64_t t = 0; t + 1 < T; ++t) {  // next-token loss under both
    for (const auto& [logits, nll] : {std::pair{r + t * V, &nll_ref}, std::pair{static_cast<const float*>(got.data() + t * V), &nll_got}}) {
      double m = logits[0], s = 0.0;
      for (int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(logits[v]));
      for (int64_t v = 0; v < V; ++v) s += std::exp(logits[v] - m);
      *nll += m + std::log(s) - logits[ids[static_cast<size_t>(t + 1)]];
    }
  }
  *max_rel = max_abs / (hi - lo);
  *mean_abs = sum_abs / static_cast<double>(T * V) / (hi - lo);
  *loss_diff = std::fabs(nll_ref - nll_got) / static_cast<double>(T - 1);
}

TransformerConfig shape(int64_t hidden, int64_t ffn, int64_t heads, int64_t kv_heads, int64_t layers) {
  nn::ModelConfig c;
  c.hidden = hidden;
  c.ffn = ffn;
  c.heads = heads;
  c.kv_heads = kv_heads;
  c.layers = layers;
  c.context = 64;
  return c;
}

TEST(Export, EngineOnExportedGgufMatchesTrainerEvalForward) {
  const Trained t = train_tiny(shape(64, 128, 4, 2, 2), 30);
  const std::string dir = temp_dir("i2s");
  train::ExportOptions o;
  o.tokenizer_path = dir + "/tokenizer.json";
  write_bpe_tokenizer_json(t.vocab, o.tokenizer_path);
  export_gguf(*t.lm, dir + "/m.gguf", o);
  const Model loaded = Model::load_gguf(dir + "/m.gguf");
  EXPECT_EQ(loaded.config().arch, "bitnet-b1.58");
  EXPECT_EQ(loaded.config().vocab, 300);
  EXPECT_EQ(loaded.config().head_dim, 16);
  EXPECT_EQ(loaded.config().context, 64);

  const std::vector<int32_t> ids(t.ids.begin() + 5, t.ids.begin() + 53);
  double max_rel, mean_abs, loss_diff;
  compare_logits(*t.lm, loaded, ids, &max_rel, &mean_abs, &loss_diff);
  EXPECT_LT(max_rel, 0.01);
  EXPECT_LT(mean_abs, 5e-4);
  EXPECT_LT(loss_diff, 2e-3);  // nats per token
  std::printf("  engine vs trainer: max |dlogit| %.2e, mean %.2e of the logit range; loss differs by %.2e nats\n",
              max_rel, mean_abs, loss_diff);

  // The tokenizer travels in the file: the same ids as the tokenizer.json.
  const auto from_file = Tokenizer::from_gguf(GgufFile::open(dir + "/m.gguf"));
  EXPECT_EQ(from_file->encode(corpus(), false, false), t.ids);

  // A checkpoint that is not fully ternary cannot be exported as one.
  t.lm->set_quant_lambda(0.5f);
  EXPECT_THROW(export_gguf(*t.lm, dir + "/bad.gguf", o), Error);
  t.lm->set_quant_lambda(1.0f);
  fs::remove_all(dir);
}

TEST(Export, TqLayoutsAndHfDirectoryRoundTrip) {
  // TQ1_0/TQ2_0 need in_features % 256 == 0; SwiGLU and an untied head exercise the other branches.
  TransformerConfig s = shape(256, 256, 4, 4, 1);
  s.activation = FfnActivation::silu;
  Trained t = train_tiny(s, 4, /*tie=*/false);
  ASSERT_TRUE(t.lm->lm_head != nullptr);
  const std::string dir = temp_dir("tq");
  train::ExportOptions o;
  const std::vector<int32_t> ids(t.ids.begin(), t.ids.begin() + 24);
  for (GgmlType type : {GgmlType::tq2_0, GgmlType::tq1_0}) {
    o.ternary_type = type;
    export_gguf(*t.lm, dir + "/m.gguf", o);
    const Model loaded = Model::load_gguf(dir + "/m.gguf");
    EXPECT_EQ(loaded.config().arch, "bitnet");
    EXPECT_EQ(loaded.config().activation, FfnActivation::silu);
    double max_rel, mean_abs, loss_diff;
    compare_logits(*t.lm, loaded, ids, &max_rel, &mean_abs, &loss_diff);
    // TQ stores the scale as f16: one more rounding (2^-11 relative) on every weight.
    EXPECT_LT(max_rel, 0.01) << ggml_type_name(type);
    EXPECT_LT(loss_diff, 2e-3) << ggml_type_name(type);
  }
  // HF dir -> GGUF again: the same ternary model, so the engine's logits are identical.
  o.ternary_type = GgmlType::i2_s;
  export_gguf(*t.lm, dir + "/m.gguf", o);
  train::export_hf_dir(dir + "/m.gguf", dir + "/hf", "");
  EXPECT_TRUE(fs::exists(dir + "/hf/config.json"));
  ConvertOptions co;
  co.ternary_type = GgmlType::i2_s;
  convert_model(dir + "/hf", dir + "/back.gguf", co);
  const Model a = Model::load_gguf(dir + "/m.gguf"), b = Model::load_gguf(dir + "/back.gguf");
  Engine ea(a, 32), eb(b, 32);
  const float* la = ea.eval(0, ids, 0);
  const std::vector<float> first(la, la + 300);
  const float* lb = eb.eval(0, ids, 0);
  for (int v = 0; v < 300; ++v) ASSERT_EQ(first[static_cast<size_t>(v)], lb[v]) << v;
  fs::remove_all(dir);
}

TEST(Export, RefusesWhatTheEngineCannotRun) {
  nn::ModelConfig c;
  c.vocab = 40;
  nn::QuantPolicy p;
  p.overrides.push_back({"model.layers.1.", nn::QuantSpec::symmetric(4), nn::QuantSpec::int8_per_token()});
  const nn::CausalLM lm(c, p, 1);
  try {
    train::to_inference_model(lm);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.self_attn.q_proj"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bitnet
