// Writing a model as GGUF: the architecture keys `Model::load_gguf` reads, ternary projections in the chosen
// file layout (TQ2_0, TQ1_0 or I2_S), norms as F32 and the embedding (and an untied head) as F16.
#include <bitnet/gguf.h>
#include <bitnet/model.h>
#include <bitnet/model_files.h>
#include <bitnet/rope_gguf.h>
#include <bitnet/ternary_formats.h>

#include <algorithm>
#include <functional>

namespace bitnet {

void Model::save_gguf(const std::string& path, GgmlType ternary_type,
                      const std::vector<std::pair<std::string, GgufValue>>& extra) const {
  BITNET_CHECK(ternary_type == GgmlType::tq2_0 || ternary_type == GgmlType::tq1_0 || ternary_type == GgmlType::i2_s,
               "[model] save_gguf: ternary type must be TQ2_0, TQ1_0 or I2_S, got {}", ggml_type_name(ternary_type));
  const TransformerConfig& c = config_;
  const TernaryFormat format = ternary_type == GgmlType::tq2_0   ? TernaryFormat::tq2_0
                               : ternary_type == GgmlType::tq1_0 ? TernaryFormat::tq1_0
                                                                 : TernaryFormat::i2_s;
  GgufWriter w;
  const std::string p = c.arch + ".";
  w.set("general.architecture", GgufValue::string(c.arch));
  w.set("general.name", GgufValue::string(description));
  w.set(p + "block_count", GgufValue::u32(static_cast<uint32_t>(c.layers)));
  w.set(p + "embedding_length", GgufValue::u32(static_cast<uint32_t>(c.hidden)));
  w.set(p + "feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.ffn)));
  w.set(p + "attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.heads)));
  w.set(p + "attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.kv_heads)));
  w.set(p + "rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  w.set(p + "context_length", GgufValue::u32(static_cast<uint32_t>(c.context)));
  w.set(p + "attention.layer_norm_rms_epsilon", GgufValue::f32(c.norm_eps));
  w.set(p + "rope.freq_base", GgufValue::f32(c.rope_theta));
  if (c.head_dim * c.heads != c.hidden) {
    w.set(p + "attention.key_length", GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
    w.set(p + "attention.value_length", GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  }
  for (auto& [key, value] : rope_scaling_gguf_keys(c.arch, c.rope_scaling)) w.set(key, std::move(value));
  w.set(p + "vocab_size", GgufValue::u32(static_cast<uint32_t>(c.vocab)));
  // llama.cpp's file type of the projections (TQ1_0 36, TQ2_0 37, bitnet.cpp's I2_S 40): readers tell I2_S's type
  // id from TQ1_0's by it in files whose architecture is not bitnet* (a "llama" I2_S file was unreadable).
  const bool extra_has_file_type =
      std::any_of(extra.begin(), extra.end(), [](const auto& kv) { return kv.first == "general.file_type"; });
  if (!extra_has_file_type)
    w.set("general.file_type", GgufValue::u32(ternary_type == GgmlType::i2_s ? 40u : ternary_type == GgmlType::tq2_0 ? 37u : 36u));
  for (const auto& [key, value] : extra) w.set(key, value);

  // Each tensor: its name, GGUF dims, type, and a function that produces its bytes when written (one tensor in
  // memory at a time).
  struct Item {
    std::string name;
    std::vector<int64_t> dims;
    GgmlType type;
    std::function<std::vector<uint8_t>()> bytes;
  };
  std::vector<Item> items;
  auto vec = [&](std::string name, const std::vector<float>& v) {
    items.push_back({std::move(name), {static_cast<int64_t>(v.size())}, GgmlType::f32, [&v] {
                       const auto* b = reinterpret_cast<const uint8_t*>(v.data());
                       return std::vector<uint8_t>(b, b + v.size() * 4);
                     }});
  };
  // "llama" files hold q/k rows in llama.cpp's interleaved-RoPE order (model_files.h).
  auto ternary = [&](std::string name, const TernaryMatrix& m) {
    BITNET_CHECK(m.row_scales().empty(), "[model] save_gguf: {} has per-row scales, which GGUF ternary types lack", name);
    const int64_t permute_heads = llama_rope_permuted_heads(c.arch, name, c.heads, c.kv_heads);
    items.push_back({std::move(name), {m.cols(), m.rows()}, ternary_type, [&m, format, permute_heads] {
                       std::vector<int8_t> v = m.unpack();
                       if (permute_heads > 0) v = permute_llama_rope_rows(v, m.rows(), m.cols(), permute_heads, true);
                       return pack_ternary(format, v, m.rows(), m.cols(), m.scale());
                     }});
  };
  auto half = [&](std::string name, const Tensor& t) {
    items.push_back({std::move(name), {t.size(1), t.size(0)}, GgmlType::f16, [&t] {
                       const Tensor h = t.to(DType::f16).contiguous();
                       const auto* b = static_cast<const uint8_t*>(h.data());
                       return std::vector<uint8_t>(b, b + h.nbytes());
                     }});
  };
  // Llama-3 RoPE scaling travels as per-frequency divisors, as llama.cpp's converter writes it.
  std::vector<float> rope_factors = c.rope_freq_factors;
  if (c.rope_scaling.type == RopeType::llama3) rope_factors = llama3_rope_factors(c.rope_scaling, c.rope_theta, c.head_dim);
  if (!rope_factors.empty()) vec("rope_freqs.weight", rope_factors);
  half("token_embd.weight", embedding_);
  vec("output_norm.weight", output_norm_);
  if (head_f16_.storage() != embedding_.storage()) half("output.weight", head_f16_);
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerWeights& lw = layers_[static_cast<size_t>(l)];
    const std::string b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", lw.attn_norm);
    vec(b + "ffn_norm.weight", lw.ffn_norm);
    if (c.sub_norms) {
      vec(b + "attn_sub_norm.weight", lw.attn_sub_norm);
      vec(b + "ffn_sub_norm.weight", lw.ffn_sub_norm);
    }
    ternary(b + "attn_q.weight", lw.wq);
    ternary(b + "attn_k.weight", lw.wk);
    ternary(b + "attn_v.weight", lw.wv);
    ternary(b + "attn_output.weight", lw.wo);
    ternary(b + "ffn_gate.weight", lw.w_gate);
    ternary(b + "ffn_up.weight", lw.w_up);
    ternary(b + "ffn_down.weight", lw.w_down);
  }
  for (const Item& it : items) w.add_tensor(it.name, it.dims, it.type);
  w.write_header(path);
  for (const Item& it : items) {
    const std::vector<uint8_t> bytes = it.bytes();
    w.write_tensor(std::as_bytes(std::span<const uint8_t>(bytes)));
  }
  w.finish();
}

}  // namespace bitnet
