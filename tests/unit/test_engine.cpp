// The engine against a plain double-precision forward pass of the same BitNet math, and its own consistency:
// prefill vs token-by-token decode, several sequences in one batch vs one at a time.
#include <bitnet/cpu.h>
#include <bitnet/engine.h>
#include <bitnet/quant.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <cmath>
#include <limits>
#include <random>

#include "io_test_util.h"
#include "runtime/kv_cache_codec.h"
#include "test_util.h"

namespace bitnet {
namespace {

TransformerConfig tiny(FfnActivation act, bool sub_norms) {
  TransformerConfig c;
  c.arch = "bitnet-b1.58";
  c.vocab = 61;
  c.hidden = 64;
  c.ffn = 96;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 16;
  c.context = 64;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.activation = act;
  c.sub_norms = sub_norms;
  return c;
}

using Vec = std::vector<double>;

Vec rms_norm_ref(const Vec& x, const std::vector<float>& g, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * (g.empty() ? 1.0 : g[i]);
  return y;
}

// BitLinear: per-token absmax int8 activations times ternary weights, as the formula says.
Vec bitlinear_ref(const Vec& x, const TernaryMatrix& w) {
  double amax = 0;
  for (double v : x) amax = std::max(amax, std::fabs(v));
  const double s = 127.0 / std::max(amax, 1e-5);
  const auto values = w.unpack();
  Vec y(static_cast<size_t>(w.rows()));
  for (int64_t n = 0; n < w.rows(); ++n) {
    double dot = 0;
    for (int64_t k = 0; k < w.cols(); ++k)
      dot += values[static_cast<size_t>(n * w.cols() + k)] * std::clamp(std::nearbyint(x[static_cast<size_t>(k)] * s), -128.0, 127.0);
    y[static_cast<size_t>(n)] = dot / s * w.scale();
  }
  return y;
}

void rope_ref(Vec& v, int64_t heads, int64_t d, int64_t pos, double theta) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < d / 2; ++i) {
      const double angle = static_cast<double>(pos) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
      const double a = v[static_cast<size_t>(h * d + i)], b = v[static_cast<size_t>(h * d + i + d / 2)];
      v[static_cast<size_t>(h * d + i)] = a * std::cos(angle) - b * std::sin(angle);
      v[static_cast<size_t>(h * d + i + d / 2)] = b * std::cos(angle) + a * std::sin(angle);
    }
}

// Logits of every position of `tokens`, recomputing the whole prefix (no cache), in double.
std::vector<Vec> forward_ref(const Model& m, const std::vector<int32_t>& tokens) {
  const TransformerConfig& c = m.config();
  const int64_t d = c.head_dim, P = static_cast<int64_t>(tokens.size());
  std::vector<Vec> x(static_cast<size_t>(P));
  const Tensor emb = m.embedding().to(DType::f32);
  for (int64_t p = 0; p < P; ++p) {
    x[static_cast<size_t>(p)].resize(static_cast<size_t>(c.hidden));
    for (int64_t i = 0; i < c.hidden; ++i) x[static_cast<size_t>(p)][static_cast<size_t>(i)] = emb.at({tokens[static_cast<size_t>(p)], i});
  }
  for (const LayerWeights& w : m.layers()) {
    std::vector<Vec> q(static_cast<size_t>(P)), k(static_cast<size_t>(P)), v(static_cast<size_t>(P));
    for (int64_t p = 0; p < P; ++p) {
      const Vec a = rms_norm_ref(x[static_cast<size_t>(p)], w.attn_norm, c.norm_eps);
      q[static_cast<size_t>(p)] = bitlinear_ref(a, w.wq);
      k[static_cast<size_t>(p)] = bitlinear_ref(a, w.wk);
      v[static_cast<size_t>(p)] = bitlinear_ref(a, w.wv);
      rope_ref(q[static_cast<size_t>(p)], c.heads, d, p, c.rope_theta);
      rope_ref(k[static_cast<size_t>(p)], c.kv_heads, d, p, c.rope_theta);
    }
    for (int64_t p = 0; p < P; ++p) {
      Vec o(static_cast<size_t>(c.heads * d), 0.0);
      for (int64_t h = 0; h < c.heads; ++h) {
        const int64_t kvh = h / (c.heads / c.kv_heads);
        Vec s(static_cast<size_t>(p + 1));
        double mx = -1e300, total = 0;
        for (int64_t j = 0; j <= p; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += q[static_cast<size_t>(p)][static_cast<size_t>(h * d + i)] * k[static_cast<size_t>(j)][static_cast<size_t>(kvh * d + i)];
          s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        for (auto& e : s) total += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= p; ++j)
          for (int64_t i = 0; i < d; ++i)
            o[static_cast<size_t>(h * d + i)] += s[static_cast<size_t>(j)] / total * v[static_cast<size_t>(j)][static_cast<size_t>(kvh * d + i)];
      }
      const Vec on = c.sub_norms ? rms_norm_ref(o, w.attn_sub_norm, c.norm_eps) : o;
      const Vec attn = bitlinear_ref(on, w.wo);
      for (int64_t i = 0; i < c.hidden; ++i) x[static_cast<size_t>(p)][static_cast<size_t>(i)] += attn[static_cast<size_t>(i)];
      const Vec f = rms_norm_ref(x[static_cast<size_t>(p)], w.ffn_norm, c.norm_eps);
      const Vec g = bitlinear_ref(f, w.w_gate), u = bitlinear_ref(f, w.w_up);
      Vec hdn(g.size());
      for (size_t i = 0; i < g.size(); ++i) {
        const double a = c.activation == FfnActivation::relu2 ? std::pow(std::max(g[i], 0.0), 2) : g[i] / (1 + std::exp(-g[i]));
        hdn[i] = a * u[i];
      }
      const Vec hn = c.sub_norms ? rms_norm_ref(hdn, w.ffn_sub_norm, c.norm_eps) : hdn;
      const Vec down = bitlinear_ref(hn, w.w_down);
      for (int64_t i = 0; i < c.hidden; ++i) x[static_cast<size_t>(p)][static_cast<size_t>(i)] += down[static_cast<size_t>(i)];
    }
  }
  std::vector<Vec> logits;
  const Tensor head = m.head_f16().to(DType::f32);
  for (int64_t p = 0; p < P; ++p) {
    const Vec h = rms_norm_ref(x[static_cast<size_t>(p)], m.output_norm(), c.norm_eps);
    Vec l(static_cast<size_t>(c.vocab));
    for (int64_t n = 0; n < c.vocab; ++n)
      for (int64_t i = 0; i < c.hidden; ++i) l[static_cast<size_t>(n)] += head.at({n, i}) * h[static_cast<size_t>(i)];
    logits.push_back(l);
  }
  return logits;
}

class EngineVsReference : public ::testing::TestWithParam<std::tuple<FfnActivation, bool>> {};

TEST_P(EngineVsReference, LogitsMatchAPlainForwardPass) {
  const auto [act, sub] = GetParam();
  const Model m = Model::random(tiny(act, sub), 7);
  Engine engine(m, 32, 1, 16);
  const std::vector<int32_t> tokens = {3, 17, 42, 0, 60, 5, 5, 9, 33};
  const auto want = forward_ref(m, tokens);
  // Prefill all tokens at once and compare the last position; then every position one at a time.
  const float* last = engine.eval(0, tokens, 0);
  const Vec& w = want.back();
  double num = 0, den = 0;
  for (size_t n = 0; n < w.size(); ++n) {
    num += (last[n] - w[n]) * (last[n] - w[n]);
    den += w[n] * w[n];
  }
  // int8 rounding ties can fall differently between f32 and double arithmetic: small, not zero.
  EXPECT_LT(std::sqrt(num / den), 2e-2) << "relative error of the last logits";
  int agree = 0;
  for (size_t p = 0; p < tokens.size(); ++p) {
    const float* l = engine.eval(0, std::span<const int32_t>(tokens.data() + p, 1), static_cast<int32_t>(p));
    size_t best = 0, want_best = 0;
    for (size_t n = 1; n < want[p].size(); ++n) {
      if (l[n] > l[best]) best = n;
      if (want[p][n] > want[p][want_best]) want_best = n;
    }
    agree += best == want_best;
  }
  EXPECT_GE(agree, static_cast<int>(tokens.size()) - 1) << "greedy choices that agree with the reference";
}

INSTANTIATE_TEST_SUITE_P(Architectures, EngineVsReference,
                         ::testing::Values(std::tuple{FfnActivation::relu2, true}, std::tuple{FfnActivation::silu, false}));

TEST(Engine, PrefillEqualsTokenByTokenDecodeBitForBit) {
  const Model m = Model::random(tiny(FfnActivation::relu2, true), 3);
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  Engine a(m, 32, 1, 16), b(m, 32, 1, 16);
  const float* pa = a.eval(0, tokens, 0);
  const std::vector<float> prefill(pa, pa + m.config().vocab);
  const float* pb = nullptr;
  for (size_t p = 0; p < tokens.size(); ++p) pb = b.eval(0, std::span<const int32_t>(tokens.data() + p, 1), static_cast<int32_t>(p));
  for (int64_t n = 0; n < m.config().vocab; ++n) ASSERT_EQ(std::bit_cast<uint32_t>(prefill[static_cast<size_t>(n)]), std::bit_cast<uint32_t>(pb[n])) << n;
}

// Long enough for several attention blocks (16 tokens) and softmax units (128 positions), in batches of 64:
// prefill equals token-by-token decode, on 1 thread and on 2 (whose decode splits the context across items and
// folds their units in a second pass), bit for bit, at several positions.
TEST(Engine, LongPrefillEqualsDecodeAndThreadCountsAgreeBitForBit) {
  const Model m = Model::random(tiny(FfnActivation::silu, false), 8);
  const int64_t V = m.config().vocab;
  std::vector<int32_t> tokens(300);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7 + 3) % static_cast<size_t>(V));
  ThreadPool one(1), two(2);
  Engine prefill(m, 320, 1, 64, &two), decode(m, 320, 1, 64, &one), decode2(m, 320, 1, 64, &two);
  for (const size_t stop : {size_t{17}, size_t{129}, size_t{257}, size_t{300}}) {
    const float* pa = prefill.eval(0, std::span<const int32_t>(tokens.data(), stop), 0);
    const std::vector<float> a(pa, pa + V);
    for (Engine* e : {&decode, &decode2}) {
      const float* pb = nullptr;
      for (size_t p = 0; p < stop; ++p) pb = e->eval(0, std::span<const int32_t>(tokens.data() + p, 1), static_cast<int32_t>(p));
      for (int64_t n = 0; n < V; ++n)
        ASSERT_EQ(std::bit_cast<uint32_t>(a[static_cast<size_t>(n)]), std::bit_cast<uint32_t>(pb[n]))
            << "after " << stop << " tokens, logit " << n << (e == &decode ? " (1 thread)" : " (2 threads)");
    }
  }
}

// Two sequences' prompts in one batch (runs of 20 tokens each, so several attention blocks per sequence).
TEST(Engine, PromptsOfTwoSequencesInOneBatchEqualPromptsAlone) {
  const Model m = Model::random(tiny(FfnActivation::relu2, true), 9);
  const int64_t V = m.config().vocab;
  Engine together(m, 32, 2, 64), alone(m, 32, 1, 64);
  std::vector<BatchToken> batch;
  std::vector<int32_t> p0, p1;
  for (int32_t i = 0; i < 20; ++i) {
    p0.push_back((i * 5 + 1) % 61);
    p1.push_back((i * 11 + 2) % 61);
  }
  for (int32_t i = 0; i < 20; ++i) batch.push_back({p0[static_cast<size_t>(i)], i, 0, i == 19});
  for (int32_t i = 0; i < 20; ++i) batch.push_back({p1[static_cast<size_t>(i)], i, 1, i == 19});
  std::vector<float> both(static_cast<size_t>(2 * V));
  together.decode(batch, both.data());
  const float* s0 = alone.eval(0, p0, 0);
  for (int64_t n = 0; n < V; ++n) ASSERT_EQ(both[static_cast<size_t>(n)], s0[n]);
  const float* s1 = alone.eval(0, p1, 0);
  for (int64_t n = 0; n < V; ++n) ASSERT_EQ(both[static_cast<size_t>(V + n)], s1[n]);
}

TEST(Engine, SequencesInOneBatchEqualSequencesAlone) {
  const Model m = Model::random(tiny(FfnActivation::relu2, true), 4);
  const int64_t V = m.config().vocab;
  Engine together(m, 16, 2, 16), alone(m, 16, 1, 16);
  std::vector<BatchToken> batch = {{5, 0, 0, false}, {9, 0, 1, false}, {6, 1, 0, true}, {10, 1, 1, true}};
  std::vector<float> both(static_cast<size_t>(2 * V));
  together.decode(batch, both.data());
  const float* s0 = alone.eval(0, std::vector<int32_t>{5, 6}, 0);
  for (int64_t n = 0; n < V; ++n) ASSERT_EQ(both[static_cast<size_t>(n)], s0[n]);
  const float* s1 = alone.eval(0, std::vector<int32_t>{9, 10}, 0);
  for (int64_t n = 0; n < V; ++n) ASSERT_EQ(both[static_cast<size_t>(V + n)], s1[n]);
}

TEST(Engine, QuantizedHeadsStayCloseToTheF16Head) {
  const Model f16 = Model::random(tiny(FfnActivation::relu2, true), 5, HeadType::f16);
  Engine a(f16, 16);
  const std::vector<int32_t> tokens = {4, 8, 15, 16, 23, 42};
  const Tensor ta = Tensor::from_bytes(a.eval(0, tokens, 0), {f16.config().vocab}, DType::f32);
  // The int4 head (16 levels per group of 32) is coarser than the int8 one (255 levels per row).
  for (auto [head, min_cosine] : {std::pair{HeadType::int8, 0.999}, std::pair{HeadType::int4, 0.99}}) {
    const Model quantized = Model::random(tiny(FfnActivation::relu2, true), 5, head);
    Engine b(quantized, 16);
    const Tensor tb = Tensor::from_bytes(b.eval(0, tokens, 0), {f16.config().vocab}, DType::f32);
    EXPECT_GT(quant_error(ta, tb).cosine, min_cosine) << head_type_name(head);
  }
  EXPECT_EQ(parse_head_type("int4"), HeadType::int4);
  EXPECT_THROW(parse_head_type("q4_0"), Error);
}

TEST(Engine, RejectsBadInput) {
  const Model m = Model::random(tiny(FfnActivation::relu2, true), 6);
  Engine e(m, 8, 1, 4);
  float logits[61];
  const BatchToken bad_token[] = {{61, 0, 0, true}};
  EXPECT_THROW(e.decode(bad_token, logits), Error);
  const BatchToken bad_pos[] = {{1, 8, 0, true}};
  EXPECT_THROW(e.decode(bad_pos, logits), Error);
  const BatchToken bad_seq[] = {{1, 0, 1, true}};
  EXPECT_THROW(e.decode(bad_seq, logits), Error);
  std::vector<BatchToken> too_many(5, BatchToken{1, 0, 0, false});
  EXPECT_THROW(e.decode(too_many, logits), Error);
  TransformerConfig c = tiny(FfnActivation::relu2, true);
  c.kv_heads = 3;
  EXPECT_THROW(Model::random(c), Error);
}

// save_sequence / load_sequence (llama-cpp-python's save_state / load_state): save a prefix of sequence 1, clobber
// it with other tokens, load it back, and the next token's logits equal an uninterrupted run bit for bit.
TEST(Engine, SavedSequenceRestoresTheCacheBitForBit) {
  const Model m = Model::random(tiny(FfnActivation::silu, false), 9);
  const int64_t V = m.config().vocab;
  const std::vector<int32_t> prompt = {1, 5, 9, 13, 17, 21, 25, 29, 33, 37}, next = {41};
  Engine ref(m, 32, 2, 16), e(m, 32, 2, 16);
  ref.eval(1, prompt, 0);
  const float* pr = ref.eval(1, next, static_cast<int32_t>(prompt.size()));
  const std::vector<float> want(pr, pr + V);

  e.eval(1, prompt, 0);
  const std::vector<uint8_t> saved = e.save_sequence(1, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(saved.size(), 32 + 2 * 2 * prompt.size() * static_cast<size_t>(m.config().kv_heads * m.config().head_dim) * 2);
  const std::vector<int32_t> other = {2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24};
  e.eval(1, other, 0);  // clobber every saved position (and more)
  const float* clobbered = e.eval(1, next, static_cast<int32_t>(prompt.size()));
  EXPECT_NE(std::vector<float>(clobbered, clobbered + V), want);
  e.load_sequence(1, saved);
  const float* pe = e.eval(1, next, static_cast<int32_t>(prompt.size()));
  for (int64_t n = 0; n < V; ++n) ASSERT_EQ(std::bit_cast<uint32_t>(want[static_cast<size_t>(n)]), std::bit_cast<uint32_t>(pe[n])) << n;

  // Into another slot, and an empty save.
  e.load_sequence(0, saved);
  const float* p0 = e.eval(0, next, static_cast<int32_t>(prompt.size()));
  for (int64_t n = 0; n < V; ++n) ASSERT_EQ(std::bit_cast<uint32_t>(want[static_cast<size_t>(n)]), std::bit_cast<uint32_t>(p0[n])) << n;
  EXPECT_EQ(e.save_sequence(0, 0).size(), 32u);

  // Mismatches are named.
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { e.save_sequence(2, 1); }).find("sequence 2 out of range"), std::string::npos);
  EXPECT_NE(message([&] { e.save_sequence(0, 33); }).find("do not fit the context of 32"), std::string::npos);
  std::vector<uint8_t> cut(saved.begin(), saved.end() - 2);
  EXPECT_NE(message([&] { e.load_sequence(0, cut); }).find("expected"), std::string::npos);
  EXPECT_NE(message([&] { e.load_sequence(0, std::span<const uint8_t>(saved.data(), 8)); }).find("header"), std::string::npos);
  std::vector<uint8_t> bad = saved;
  bad[0] ^= 1;
  EXPECT_NE(message([&] { e.load_sequence(0, bad); }).find("bad magic"), std::string::npos);
  TransformerConfig wide = tiny(FfnActivation::silu, false);
  wide.kv_heads = 4;
  const Model other_model = Model::random(wide, 9);
  Engine o(other_model, 32, 1, 16);
  EXPECT_NE(message([&] { o.load_sequence(0, saved); }).find("KV width of 32, this model has 64"), std::string::npos);
  Engine small(m, 8, 1, 16);
  EXPECT_NE(message([&] { small.load_sequence(0, saved); }).find("10 saved tokens do not fit the context of 8"),
            std::string::npos);
}

}  // namespace
}  // namespace bitnet

namespace bitnet {
namespace {

// Powers of 4 everywhere, so the random model's scales (1 / sqrt(cols)) are exact in f16 (TQ2_0 / TQ1_0).
TransformerConfig gguf_shape() {
  TransformerConfig c = tiny(FfnActivation::relu2, true);
  c.hidden = 256;
  c.ffn = 1024;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 64;
  return c;
}

class GgufModelRoundTrip : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GgufModelRoundTrip, LoadedModelGivesTheSameLogits) {
  const Model m = Model::random(gguf_shape(), 9);
  const std::string path = ::testing::TempDir() + "/bitnet_model_" + std::string(ggml_type_name(GetParam())) + ".gguf";
  m.save_gguf(path, GetParam());
  const Model back = Model::load_gguf(path);
  EXPECT_EQ(back.config().layers, m.config().layers);
  EXPECT_EQ(back.config().vocab, m.config().vocab);
  EXPECT_EQ(back.config().activation, FfnActivation::relu2);  // bitnet-b1.58
  EXPECT_TRUE(back.config().sub_norms);
  EXPECT_EQ(back.layers()[1].w_down.unpack(), m.layers()[1].w_down.unpack());
  EXPECT_EQ(back.layers()[1].w_down.scale(), m.layers()[1].w_down.scale());
  Engine a(m, 16), b(back, 16);
  const std::vector<int32_t> tokens = {7, 3, 50, 2};
  const float* la = a.eval(0, tokens, 0);
  const std::vector<float> want(la, la + m.config().vocab);
  const float* lb = b.eval(0, tokens, 0);
  for (int64_t n = 0; n < m.config().vocab; ++n) ASSERT_EQ(lb[n], want[static_cast<size_t>(n)]) << n;
  std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(TernaryTypes, GgufModelRoundTrip,
                         ::testing::Values(GgmlType::tq2_0, GgmlType::tq1_0, GgmlType::i2_s),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

TEST(ModelLoad, ClearErrorsForMissingOrUnsupportedFiles) {
  EXPECT_THROW(Model::load_gguf("/nonexistent/model.gguf"), Error);
  try {
    Model::load_gguf(std::string(BITNET_SHARED_DATA) + "/tokenizers/ggml-vocab-gpt-2.gguf");
    ADD_FAILURE() << "a vocabulary-only file loaded as a model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ggml-vocab-gpt-2.gguf"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bitnet

#include <bitnet/perplexity.h>

namespace bitnet {
namespace {

// llama-perplexity's arithmetic, recomputed here token by token: BOS replaces each chunk's first token, the logits
// at positions n_ctx/2 .. n_ctx-2 score the next token of the text, and the error is the standard error of the
// mean NLL times the perplexity.
TEST(Perplexity, MatchesLlamaPerplexityComputedTokenByToken) {
  const Model m = Model::random(tiny(FfnActivation::relu2, true), 12);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(m.config().vocab - 1));
  std::vector<int32_t> tokens(40);
  for (auto& t : tokens) t = d(rng);
  const int32_t bos = 1;
  Engine batched(m, 16, 1, 5), single(m, 16, 1, 1);
  const PerplexityResult r = perplexity(batched, tokens, {.n_ctx = 16, .bos = bos});
  EXPECT_EQ(r.chunks, 2);
  EXPECT_EQ(r.scored_tokens, 2 * 7);  // positions 8..14 of each chunk predict tokens 9..15
  std::vector<double> nlls;
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < 15; ++i) {
      const int32_t token = i == 0 ? bos : tokens[static_cast<size_t>(c * 16 + i)];
      const float* l = single.eval(0, std::span<const int32_t>(&token, 1), static_cast<int32_t>(i));
      if (i < 8) continue;
      double m_ = l[0], z = 0;
      for (int64_t v = 1; v < m.config().vocab; ++v) m_ = std::max(m_, static_cast<double>(l[v]));
      for (int64_t v = 0; v < m.config().vocab; ++v) z += std::exp(l[v] - m_);
      nlls.push_back(m_ + std::log(z) - l[tokens[static_cast<size_t>(c * 16 + i + 1)]]);
    }
  double mean = 0;
  for (double v : nlls) mean += v / 14;
  double var = 0;
  for (double v : nlls) var += (v - mean) * (v - mean) / 14;
  // A random model: perplexities in the 1e14s, so compare relatively.
  EXPECT_NEAR(r.mean_nll, mean, 1e-6);
  EXPECT_NEAR(r.perplexity / std::exp(mean), 1.0, 1e-6);
  EXPECT_NEAR(r.perplexity_error / (std::sqrt(var / 13) * std::exp(mean)), 1.0, 1e-5);
  ASSERT_EQ(r.running.size(), 2u);
  EXPECT_DOUBLE_EQ(r.running.back(), r.perplexity);
  double first = 0;
  for (int i = 0; i < 7; ++i) first += nlls[static_cast<size_t>(i)] / 7;
  EXPECT_NEAR(r.running.front() / std::exp(first), 1.0, 1e-6);
  // llama.cpp needs two chunks' worth of tokens.
  EXPECT_THROW(perplexity(batched, std::span<const int32_t>(tokens.data(), 31), {.n_ctx = 16}), Error);
  EXPECT_EQ(perplexity(batched, tokens, {.n_ctx = 16, .max_chunks = 1}).chunks, 1);
}

}  // namespace
}  // namespace bitnet

namespace bitnet {
namespace {

// Context shift: the first layer's keys and values depend on each token alone (no attention before them), so
// after shifting they must be what a fresh engine computes for the kept tokens at their new positions: values
// exactly, keys up to f16 rounding of the re-rotation.
TEST(Engine, ContextShiftRotatesKeysToTheirNewPositions) {
  TransformerConfig c = tiny(FfnActivation::relu2, true);
  const Model m = Model::random(c, 11);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back((i * 37 + 5) % static_cast<int32_t>(c.vocab));
  const int64_t keep = 4, discard = 15, n = 40;
  Engine shifted(m, 64);
  shifted.eval(0, tokens, 0);
  shifted.shift_sequence(0, keep, discard, n);
  std::vector<int32_t> kept(tokens.begin(), tokens.begin() + keep);
  kept.insert(kept.end(), tokens.begin() + keep + discard, tokens.end());
  Engine fresh(m, 64);
  fresh.eval(0, kept, 0);
  const auto a = shifted.save_sequence(0, n - discard), b = fresh.save_sequence(0, n - discard);
  ASSERT_EQ(a.size(), b.size());
  const size_t header = 32, rows = static_cast<size_t>(n - discard), width = static_cast<size_t>(c.kv_heads * c.head_dim);
  const auto* ka = reinterpret_cast<const uint16_t*>(a.data() + header);
  const auto* kb = reinterpret_cast<const uint16_t*>(b.data() + header);
  double worst = 0;
  for (size_t i = 0; i < rows * width; ++i) {  // layer 0's keys
    const float x = f16_to_f32(ka[i]), y = f16_to_f32(kb[i]);
    worst = std::max(worst, static_cast<double>(std::fabs(x - y)) / std::max(1.0f, std::fabs(y)));
  }
  EXPECT_LT(worst, 4e-3);  // f16 rounding of a rotated key (2^-11 relative) plus the re-rotation's own
  EXPECT_EQ(std::memcmp(ka + rows * width, kb + rows * width, rows * width * 2), 0);  // layer 0's values, moved as they are
  // Positions before `keep` are untouched: those rows equal bit for bit.
  EXPECT_EQ(std::memcmp(ka, kb, static_cast<size_t>(keep) * width * 2), 0);
  // It still decodes: the next token at the shifted position.
  const int32_t next = 7;
  const float* l = shifted.eval(0, std::span<const int32_t>(&next, 1), static_cast<int32_t>(n - discard));
  EXPECT_TRUE(std::isfinite(l[0]));
  EXPECT_THROW(shifted.shift_sequence(0, 10, 30, 26), Error);  // more than it holds
  EXPECT_THROW(shifted.shift_sequence(0, 0, 0, 10), Error);
}

}  // namespace
}  // namespace bitnet

namespace bitnet {
namespace {

// Loading a GGUF model reports each layer as it is read and repacked (the CLI draws its progress line from it).
TEST(Engine, LoadingReportsProgressPerLayer) {
  const Model m = Model::random(tiny(FfnActivation::relu2, true), 13);
  test::TempDir dir;
  m.save_gguf(dir.file("m.gguf"), GgmlType::i2_s);
  std::vector<std::pair<int64_t, int64_t>> seen;
  LoadOptions o;
  o.progress = [&](int64_t done, int64_t total) { seen.emplace_back(done, total); };
  const Model loaded = Model::load(dir.file("m.gguf"), o);
  ASSERT_EQ(seen.size(), static_cast<size_t>(m.config().layers));
  for (size_t i = 0; i < seen.size(); ++i)
    EXPECT_EQ(seen[i], (std::pair<int64_t, int64_t>{static_cast<int64_t>(i) + 1, m.config().layers}));
  std::vector<std::pair<int64_t, int64_t>> generated;
  Model::random(tiny(FfnActivation::relu2, true), 13, HeadType::f16,
                [&](int64_t done, int64_t total) { generated.emplace_back(done, total); });
  EXPECT_EQ(generated, seen);
}

// Every kernel variant this CPU runs decodes a model like the reference variant: the logits of a prompt and of the
// tokens decoded after it, with each head and each cache type. The integer products are exact in every variant;
// exp, the f16 head and the float sums' order differ, so the check is a tolerance (seen: 1e-7 of the largest
// logit; a wrong kernel is off by whole units). It catches a variant whose family tables pair the wrong kernels,
// or a family falling back to the wrong variant, which the kernel tests, one family at a time, would not. Widths
// past one 256-weight block, row counts that leave 1-3 rows.
TEST(Engine, EveryKernelVariantDecodesLikeTheReference) {
  TransformerConfig c = tiny(FfnActivation::relu2, true);
  c.hidden = 320;
  c.ffn = 582;
  c.head_dim = 80;
  const std::vector<int32_t> prompt = {3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 32, 38, 46, 26, 43, 38, 32, 7, 9};
  const KvCacheTypes f16_cache{KvCacheType::f16, KvCacheType::f16}, q8_cache{KvCacheType::q8_0, KvCacheType::q8_0};
  for (HeadType head : {HeadType::f16, HeadType::int8, HeadType::int4}) {
    const Model m = Model::random(c, 12, head);
    for (const KvCacheTypes& kv : {f16_cache, q8_cache}) {
      auto run = [&](Isa isa) {
        force_isa(isa);
        ThreadPool pool(2);
        Engine e(m, 64, 1, 16, &pool, kv);
        std::vector<float> out;
        auto keep = [&](const float* p) { out.insert(out.end(), p, p + c.vocab); };
        keep(e.eval(0, prompt, 0));
        for (int32_t i = 0; i < 4; ++i)
          keep(e.eval(0, std::vector<int32_t>{7 * i + 1}, static_cast<int32_t>(prompt.size()) + i));
        force_isa(std::nullopt);
        return out;
      };
      const std::vector<float> want = run(Isa::ref);
      float largest = 0.0f;
      for (float v : want) largest = std::max(largest, std::fabs(v));
      for (Isa isa : {Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::neon}) {
        if (!isa_supported(isa)) continue;
        const std::vector<float> got = run(isa);
        ASSERT_EQ(got.size(), want.size());
        float worst = 0.0f;
        for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
        EXPECT_LE(worst, 1e-4f * largest) << isa_name(isa) << ", " << head_type_name(head) << " head, "
                                          << kv_cache_type_name(kv.k) << " cache";
      }
    }
  }
}

// The base-3 packing (1.6 bits per weight) holds the same weights as the 2-bit one, and the integer dot products are
// exact: logits agree bit for bit, in prefill, decode and a batch of two sequences, on 1 and 2 threads. Widths that
// give the base-3 layout whole superblocks (1280 weights) and 2-bit tail blocks: hidden 1536 (one of each), ffn
// 2816 (two and one). A model saved as TQ1_0 loads in the base-3 packing unless told otherwise, where this CPU's
// kernel decodes base3 fast (AVX-512 VBMI); with any other kernel (AVX2 here) it loads as 2bit.
TEST(Engine, Base3PackingGivesTheTwoBitLogitsBitForBit) {
  TransformerConfig c = tiny(FfnActivation::relu2, true);
  c.hidden = 1536;
  c.ffn = 2816;
  c.heads = 8;
  c.kv_heads = 4;
  c.head_dim = 192;
  const Model two = Model::random(c, 21, HeadType::f16, nullptr, TernaryPacking::two_bit);
  const Model three = Model::random(c, 21, HeadType::f16, nullptr, TernaryPacking::base3);
  ASSERT_EQ(three.ternary_packing(), TernaryPacking::base3);
  EXPECT_LT(static_cast<double>(three.ternary_bytes()), 0.85 * static_cast<double>(two.ternary_bytes()));
  const int64_t V = c.vocab;
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5}, other = {2, 7, 1, 8};
  // Logits of the prompt, then of one decoded token, then of a batch of two sequences' next tokens.
  auto run = [&](const Model& m, ThreadPool& pool) {
    Engine e(m, 32, 2, 16, &pool);
    std::vector<float> out;
    auto keep = [&](const float* p, int64_t rows) { out.insert(out.end(), p, p + rows * V); };
    keep(e.eval(0, prompt, 0), 1);
    keep(e.eval(1, other, 0), 1);
    keep(e.eval(0, std::vector<int32_t>{7}, static_cast<int32_t>(prompt.size())), 1);
    const std::vector<BatchToken> batch = {{8, static_cast<int32_t>(prompt.size()) + 1, 0, true},
                                           {11, static_cast<int32_t>(other.size()), 1, true}};
    std::vector<float> two_rows(static_cast<size_t>(2 * V));
    e.decode(batch, two_rows.data());
    keep(two_rows.data(), 2);
    return out;
  };
  ThreadPool one(1), pair(2);
  const std::vector<float> want = run(two, one);
  for (ThreadPool* pool : {&one, &pair}) {
    const std::vector<float> got = run(three, *pool);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << "logit " << i << ", "
                                                                                   << pool->size() << " threads";
  }
  test::TempDir dir;
  two.save_gguf(dir.file("m.gguf"), GgmlType::tq1_0);
  const Model automatic = Model::load(dir.file("m.gguf"));
  if (base3_decodes_fast()) {
    EXPECT_EQ(automatic.ternary_packing(), TernaryPacking::base3);
    EXPECT_EQ(automatic.ternary_bytes(), three.ternary_bytes());
  } else {
    EXPECT_EQ(automatic.ternary_packing(), TernaryPacking::two_bit);
  }
  if (isa_supported(Isa::avx2)) {
    force_isa(Isa::avx2);
    EXPECT_FALSE(base3_decodes_fast());
    EXPECT_EQ(Model::load(dir.file("m.gguf")).ternary_packing(), TernaryPacking::two_bit);
    force_isa(std::nullopt);
  }
  if (isa_supported(Isa::avx512) && cpu_features().avx512vnni && cpu_features().avx512vbmi) {
    force_isa(Isa::avx512);
    EXPECT_TRUE(base3_decodes_fast());
    force_isa(std::nullopt);
  }
  LoadOptions o;
  o.packing = TernaryPacking::two_bit;
  const Model asked = Model::load(dir.file("m.gguf"), o);
  EXPECT_EQ(asked.ternary_packing(), TernaryPacking::two_bit);
  two.save_gguf(dir.file("i2s.gguf"), GgmlType::i2_s);
  EXPECT_EQ(Model::load(dir.file("i2s.gguf")).ternary_packing(), TernaryPacking::two_bit);
  for (const Model* m : {&automatic, &asked}) {
    for (size_t l = 0; l < m->layers().size(); ++l)
      EXPECT_EQ(m->layers()[l].w_down.unpack(), two.layers()[l].w_down.unpack()) << "layer " << l;
  }
}

}  // namespace
}  // namespace bitnet

namespace bitnet {
namespace {

// The q8_0 KV cache: ggml's block formula on each head's values (heads whose width is not a multiple of 32 too),
// prefill equal to decode bit for bit, logits close to the f16 cache's, saved sequences that name their cache type.
TEST(KvCacheQ8, RowsFollowGgmlsBlockFormula) {
  std::mt19937 rng(21);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (int64_t n : {int64_t{1}, int64_t{31}, int64_t{32}, int64_t{48}, int64_t{96}, int64_t{150}}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = dist(rng);
    std::vector<uint8_t> row(static_cast<size_t>(detail::kv_values_bytes(KvCacheType::q8_0, n)));
    ASSERT_EQ(kv_cache_row_bytes(KvCacheType::q8_0, 3, n), 3 * detail::kv_values_bytes(KvCacheType::q8_0, n));
    ASSERT_EQ(static_cast<int64_t>(row.size()), (n + 31) / 32 * 34);
    detail::kv_encode(KvCacheType::q8_0, x.data(), n, row.data());
    std::vector<float> all(static_cast<size_t>(n));
    detail::kv_decode(KvCacheType::q8_0, row.data(), 0, n, all.data());
    for (int64_t b = 0; b < n; b += 32) {
      const int64_t len = std::min<int64_t>(32, n - b);
      float amax = 0.0f;
      for (int64_t j = 0; j < len; ++j) amax = std::max(amax, std::fabs(x[static_cast<size_t>(b + j)]));
      const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
      const float dq = f16_to_f32(f32_to_f16(d));
      for (int64_t j = 0; j < len; ++j) {
        const size_t i = static_cast<size_t>(b + j);
        ASSERT_EQ(all[i], std::round(x[i] * id) * dq) << "n " << n << " element " << i;
        ASSERT_LE(std::fabs(all[i] - x[i]), 0.5f * d + 1e-3f * amax) << "n " << n << " element " << i;
      }
    }
    // Any range reads what the whole row reads.
    for (int64_t first : {int64_t{0}, int64_t{5}, n / 2, n - 1}) {
      if (first >= n) continue;
      const int64_t len = std::min<int64_t>(n - first, 40);
      std::vector<float> part(static_cast<size_t>(len));
      detail::kv_decode(KvCacheType::q8_0, row.data(), first, len, part.data());
      for (int64_t j = 0; j < len; ++j) ASSERT_EQ(part[static_cast<size_t>(j)], all[static_cast<size_t>(first + j)]);
    }
  }
  // Non-finite values (a broken model's activations) are stored as 0, and the block's other values keep their
  // scale.
  std::vector<float> bad(40, 1.0f);
  bad[3] = std::nanf("");
  bad[7] = std::numeric_limits<float>::infinity();
  bad[35] = -std::numeric_limits<float>::infinity();
  bad[10] = 2.0f;
  std::vector<uint8_t> bad_row(static_cast<size_t>(detail::kv_values_bytes(KvCacheType::q8_0, 40)));
  detail::kv_encode(KvCacheType::q8_0, bad.data(), 40, bad_row.data());
  std::vector<float> back(40);
  detail::kv_decode(KvCacheType::q8_0, bad_row.data(), 0, 40, back.data());
  EXPECT_EQ(back[3], 0.0f);
  EXPECT_EQ(back[7], 0.0f);
  EXPECT_EQ(back[35], 0.0f);
  EXPECT_NEAR(back[10], 2.0f, 0.01f);
  EXPECT_NEAR(back[0], 1.0f, 0.01f);
  EXPECT_EQ(parse_kv_cache_type("q8_0"), KvCacheType::q8_0);
  EXPECT_EQ(kv_cache_type_name(KvCacheType::f16), "f16");
  EXPECT_THROW(parse_kv_cache_type("q4_0"), Error);
}

TEST(KvCacheQ8, PrefillEqualsDecodeAndStaysCloseToF16) {
  TransformerConfig c = tiny(FfnActivation::silu, false);
  c.head_dim = 24;  // each head one short q8_0 block
  const Model m = Model::random(c, 12);
  const int64_t V = c.vocab;
  std::vector<int32_t> tokens(140);  // past the first softmax unit (128 positions)
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 5 + 1) % static_cast<size_t>(V));
  for (KvCacheTypes kv : {KvCacheTypes{KvCacheType::q8_0, KvCacheType::q8_0}, KvCacheTypes{KvCacheType::q8_0, KvCacheType::f16},
                          KvCacheTypes{KvCacheType::f16, KvCacheType::q8_0}}) {
    ThreadPool one(1), two(2);
    Engine prefill(m, 144, 1, 64, &two, kv), decode(m, 144, 1, 64, &one, kv), f16(m, 144, 1, 64, &two);
    // q8_0 planes hold whole tiles: keys of 16 positions (144 is 9 tiles), values of 32 (144 positions take 160).
    const int64_t k_positions = 144, v_positions = kv.v == KvCacheType::q8_0 ? 160 : 144;
    EXPECT_EQ(prefill.kv_cache_bytes(), c.layers * (k_positions * kv_cache_row_bytes(kv.k, c.kv_heads, 24) +
                                                    v_positions * kv_cache_row_bytes(kv.v, c.kv_heads, 24)));
    const float* pa = prefill.eval(0, tokens, 0);
    const std::vector<float> a(pa, pa + V);
    const float* pb = nullptr;
    for (size_t p = 0; p < tokens.size(); ++p) pb = decode.eval(0, std::span<const int32_t>(tokens.data() + p, 1), static_cast<int32_t>(p));
    for (int64_t n = 0; n < V; ++n) ASSERT_EQ(std::bit_cast<uint32_t>(a[static_cast<size_t>(n)]), std::bit_cast<uint32_t>(pb[n])) << n;
    const float* pf = f16.eval(0, tokens, 0);
    const Tensor ta = Tensor::from_bytes(pf, {V}, DType::f32), tb = Tensor::from_bytes(a.data(), {V}, DType::f32);
    EXPECT_GT(quant_error(ta, tb).cosine, 0.999) << kv_cache_type_name(kv.k) << "/" << kv_cache_type_name(kv.v);
  }
}

TEST(KvCacheQ8, SavedSequencesCarryTheirCacheType) {
  const Model m = Model::random(tiny(FfnActivation::relu2, true), 13);
  const int64_t V = m.config().vocab;
  const KvCacheTypes q8{KvCacheType::q8_0, KvCacheType::q8_0};
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6}, next = {5};
  Engine ref(m, 32, 1, 16, nullptr, q8), e(m, 32, 1, 16, nullptr, q8), f16(m, 32, 1, 16);
  ref.eval(0, prompt, 0);
  const float* pr = ref.eval(0, next, static_cast<int32_t>(prompt.size()));
  const std::vector<float> want(pr, pr + V);
  e.eval(0, prompt, 0);
  const std::vector<uint8_t> saved = e.save_sequence(0, static_cast<int64_t>(prompt.size()));
  const int64_t row_bytes = kv_cache_row_bytes(KvCacheType::q8_0, m.config().kv_heads, m.config().head_dim);
  EXPECT_EQ(saved.size(), 48 + 2 * m.config().layers * prompt.size() * static_cast<size_t>(row_bytes));
  e.eval(0, std::vector<int32_t>{7, 7, 7, 7, 7, 7, 7, 7, 7}, 0);
  e.load_sequence(0, saved);
  const float* pe = e.eval(0, next, static_cast<int32_t>(prompt.size()));
  for (int64_t n = 0; n < V; ++n) ASSERT_EQ(std::bit_cast<uint32_t>(want[static_cast<size_t>(n)]), std::bit_cast<uint32_t>(pe[n])) << n;
  try {
    f16.load_sequence(0, saved);
    FAIL() << "an f16 engine loaded a q8_0 save";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("q8_0"), std::string::npos) << err.what();
  }
  // The context shift re-encodes the rotated keys.
  e.shift_sequence(0, 2, 3, static_cast<int64_t>(prompt.size()));
  const float* ps = e.eval(0, next, static_cast<int32_t>(prompt.size()) - 3);
  for (int64_t n = 0; n < V; ++n) ASSERT_TRUE(std::isfinite(ps[n]));
  // A save of the older format (BTNKV2: q8_0 blocks along the whole row) is refused when heads of 16 values would
  // have shared blocks.
  std::vector<uint8_t> v2 = saved;
  v2[0] = 0x42, v2[1] = 0x54, v2[2] = 0x4E, v2[3] = 0x4B, v2[4] = 0x56, v2[5] = 0x32;  // "BTNKV2"
  try {
    e.load_sequence(0, v2);
    FAIL() << "a BTNKV2 save with heads of 16 q8_0 values was loaded";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("older engine"), std::string::npos) << err.what();
  }
}

// Heads of 32 values: a BTNKV2 save holds the same bytes as today's, and loads.
TEST(KvCacheQ8, OlderSavesLoadWhenHeadsStartOnABlock) {
  TransformerConfig c = tiny(FfnActivation::relu2, true);
  c.head_dim = 32;
  c.heads = 2;
  c.kv_heads = 1;
  const Model m = Model::random(c, 14);
  const KvCacheTypes q8{KvCacheType::q8_0, KvCacheType::q8_0};
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6}, next = {5};
  Engine e(m, 32, 1, 16, nullptr, q8);
  e.eval(0, prompt, 0);
  std::vector<uint8_t> saved = e.save_sequence(0, static_cast<int64_t>(prompt.size()));
  const float* pw = e.eval(0, next, static_cast<int32_t>(prompt.size()));
  const std::vector<float> want(pw, pw + c.vocab);
  ASSERT_EQ(saved[5], 0x33);  // "BTNKV3"
  saved[5] = 0x32;
  e.eval(0, std::vector<int32_t>{7, 7, 7, 7, 7, 7, 7, 7, 7}, 0);
  e.load_sequence(0, saved);
  const float* pe = e.eval(0, next, static_cast<int32_t>(prompt.size()));
  for (int64_t n = 0; n < c.vocab; ++n)
    ASSERT_EQ(std::bit_cast<uint32_t>(want[static_cast<size_t>(n)]), std::bit_cast<uint32_t>(pe[n])) << n;
}

}  // namespace
}  // namespace bitnet
