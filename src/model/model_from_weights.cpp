// A Model from weights held in memory (what the exporter of trained models builds before writing GGUF).
#include <bitnet/error.h>
#include <bitnet/model.h>

namespace bitnet {

Model Model::from_weights(const TransformerConfig& config, const Tensor& embedding, std::vector<LayerWeights> layers,
                          std::vector<float> output_norm, const Tensor& head, HeadType head_type) {
  config.validate();
  const TransformerConfig& c = config;
  auto check_matrix = [](const Tensor& t, const char* name, int64_t rows, int64_t cols) {
    BITNET_CHECK(t.ndim() == 2 && t.size(0) == rows && t.size(1) == cols && (t.dtype() == DType::f32 || t.dtype() == DType::f16),
                 "[model] from_weights: {} is {} {}, expected f32/f16 [{}, {}]", name, dtype_name(t.dtype()),
                 t.str(), rows, cols);
  };
  check_matrix(embedding, "the embedding", c.vocab, c.hidden);
  if (head.defined()) check_matrix(head, "the output head", c.vocab, c.hidden);
  BITNET_CHECK(static_cast<int64_t>(layers.size()) == c.layers, "[model] from_weights: {} layers given, config has {}",
               layers.size(), c.layers);
  BITNET_CHECK(static_cast<int64_t>(output_norm.size()) == c.hidden, "[model] from_weights: output norm has {} values, expected {}",
               output_norm.size(), c.hidden);
  const int64_t q_dim = c.heads * c.head_dim, kv_dim = c.kv_heads * c.head_dim;
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerWeights& w = layers[l];
    auto vec = [&](const std::vector<float>& v, const char* name, int64_t n) {
      BITNET_CHECK(static_cast<int64_t>(v.size()) == n, "[model] from_weights: layer {} {} has {} values, expected {}", l,
                   name, v.size(), n);
    };
    auto mat = [&](const TernaryMatrix& m, const char* name, int64_t rows, int64_t cols) {
      BITNET_CHECK(m.rows() == rows && m.cols() == cols, "[model] from_weights: layer {} {} is [{}, {}], expected [{}, {}]",
                   l, name, m.rows(), m.cols(), rows, cols);
    };
    vec(w.attn_norm, "attn_norm", c.hidden);
    vec(w.ffn_norm, "ffn_norm", c.hidden);
    if (c.sub_norms) {
      vec(w.attn_sub_norm, "attn_sub_norm", q_dim);
      vec(w.ffn_sub_norm, "ffn_sub_norm", c.ffn);
    }
    mat(w.wq, "attn_q", q_dim, c.hidden);
    mat(w.wk, "attn_k", kv_dim, c.hidden);
    mat(w.wv, "attn_v", kv_dim, c.hidden);
    mat(w.wo, "attn_output", c.hidden, q_dim);
    mat(w.w_gate, "ffn_gate", c.ffn, c.hidden);
    mat(w.w_up, "ffn_up", c.ffn, c.hidden);
    mat(w.w_down, "ffn_down", c.hidden, c.ffn);
  }
  Model m;
  m.config_ = config;
  m.description = "trained " + config.arch;
  m.layers_ = std::move(layers);
  m.output_norm_ = std::move(output_norm);
  m.embedding_ = embedding.to(DType::f16).contiguous();  // as the GGUF files store it
  m.head_f16_ = head.defined() ? head.to(DType::f16).contiguous() : m.embedding_;
  m.finish_head(head_type);
  return m;
}

}  // namespace bitnet
