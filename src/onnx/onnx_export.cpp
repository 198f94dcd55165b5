// A BitNet model as an ONNX decoder graph (opset 17, default domain only) that computes what the engine
// computes, op for op:
//   RMSNorm with the sum of squares in double (as the engine), x * inv * g in f32;
//   per-token absmax int8 quantization: s = 127 / max(max|x|, 1e-5), q = clip(round_half_even(x * s), -128, 127);
//   MatMulInteger(q + 128 as uint8 with a_zero_point 128, int8 ternary weights [in, out]) -> int32, exact;
//   y = float(acc) * (1/s * w_scale);
//   half-split RoPE from cos/sin tables gathered by position_ids; keys and values rounded to f16 (the engine's
//   cache) and concatenated after past_key_values; grouped-query attention with a causal + padding mask;
//   relu^2 or SiLU gating; the sub-norms; a tied or untied f16 head in f32 arithmetic.
// Inputs and outputs follow ONNX Runtime GenAI / Optimum decoders, so one graph does prefill and decode.
#include <bitnet/error.h>
#include <bitnet/model.h>
#include <bitnet/onnx.h>
#include <bitnet/ternary_formats.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <unistd.h>

#include "onnx/base64.h"
#include "onnx/onnx_file.h"
#include "onnx/onnx_graph.h"
#include "onnx/onnx_layout.h"

namespace bitnet {

using onnx_io::Attr;
using onnx_io::GraphBuilder;
namespace fs = std::filesystem;

bool onnx_built() { return true; }

namespace onnx_io {
bool is_graph_weight(std::string_view n) {
  if (n == "token_embd.weight" || n == "output_norm.weight" || n == "output.weight") return true;
  if (!n.starts_with("blk.")) return false;
  const size_t dot = n.find('.', 4);
  if (dot == std::string_view::npos || dot == 4) return false;
  for (size_t i = 4; i < dot; ++i)
    if (n[i] < '0' || n[i] > '9') return false;
  const std::string_view rest = n.substr(dot + 1);
  for (const char* w : {"attn_norm.weight", "ffn_norm.weight", "attn_sub_norm.weight", "ffn_sub_norm.weight",
                        "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_gate.weight",
                        "ffn_up.weight", "ffn_down.weight", "attn_q.scale", "attn_k.scale", "attn_v.scale",
                        "attn_output.scale", "ffn_gate.scale", "ffn_up.scale", "ffn_down.scale"})
    if (rest == w) return true;
  return false;
}
}  // namespace onnx_io

namespace {

std::span<const std::byte> bytes_of(const void* p, size_t n) { return {static_cast<const std::byte*>(p), n}; }

// The source GGUF's metadata (less the alignment) and its tensors the graph does not hold, as GGUF bytes.
std::vector<std::byte> side_gguf(const GgufFile& f) {
  char path[] = "/tmp/bitnet-onnx-meta-XXXXXX";
  const int fd = ::mkstemp(path);
  BITNET_CHECK(fd >= 0, "[onnx] cannot create a temporary file for the GGUF metadata");
  ::close(fd);
  struct Unlink {
    const char* p;
    ~Unlink() { ::unlink(p); }
  } unlink_at_exit{path};
  GgufWriter w;
  for (const auto& [k, v] : f.metadata())
    if (k != "general.alignment") w.set(k, v);
  std::vector<const GgufTensorInfo*> extra;
  for (const auto& t : f.tensors())
    if (!onnx_io::is_graph_weight(t.name)) {
      w.add_tensor(t.name, t.dims, t.type);
      extra.push_back(&t);
    }
  w.write_header(path);
  for (const auto* t : extra) w.write_tensor(f.tensor_data(*t));
  w.finish();
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

void value_info(onnx::ValueInfoProto* v, const std::string& name, int32_t type, const std::vector<std::string>& dims) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(type);
  auto* shape = tt->mutable_shape();
  for (const auto& d : dims) {
    auto* dim = shape->add_dim();
    if (!d.empty() && d.find_first_not_of("0123456789") == std::string::npos) dim->set_dim_value(std::stoll(d));
    else dim->set_dim_param(d);
  }
}

class DecoderGraph {
 public:
  DecoderGraph(const Model& m, GraphBuilder& g) : m_(m), c_(m.config()), g_(g) {}

  uint64_t ternary_weights = 0;

  void build() {
    const int64_t d = c_.head_dim, half = d / 2;
    // Embedding.
    weight_tensor("token_embd.weight", m_.embedding());
    std::string x = g_.node("Gather", {"token_embd.weight", "input_ids"}, {Attr::integer("axis", 0)});
    if (m_.embedding().dtype() == DType::f16) x = cast(x, onnx_io::kFloat);
    // RoPE tables, exactly the engine's: angle = float(pos) * inv_freq[i]; cos and sin times the yarn factor.
    const RopeFrequencies rf = c_.rope(0);
    std::vector<float> cos_t(static_cast<size_t>(c_.context * half)), sin_t(cos_t.size());
    for (int64_t p = 0; p < c_.context; ++p)
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(p) * rf.inv_freq[static_cast<size_t>(i)];
        cos_t[static_cast<size_t>(p * half + i)] = std::cos(angle) * rf.attention_factor;
        sin_t[static_cast<size_t>(p * half + i)] = std::sin(angle) * rf.attention_factor;
      }
    g_.initializer(std::string(onnx_io::kRopeCos), onnx_io::kFloat, {c_.context, half}, bytes_of(cos_t.data(), cos_t.size() * 4),
                   "cos(position * inv_freq) per position: gathered by position_ids");
    g_.initializer(std::string(onnx_io::kRopeSin), onnx_io::kFloat, {c_.context, half}, bytes_of(sin_t.data(), sin_t.size() * 4));
    const std::string axis2 = g_.const_i64({2});
    cos_ = g_.node("Unsqueeze", {g_.node("Gather", {std::string(onnx_io::kRopeCos), "position_ids"}, {Attr::integer("axis", 0)}), axis2});
    sin_ = g_.node("Unsqueeze", {g_.node("Gather", {std::string(onnx_io::kRopeSin), "position_ids"}, {Attr::integer("axis", 0)}), axis2});
    build_mask();
    for (int64_t l = 0; l < c_.layers; ++l) x = layer(l, x);
    g_.set_scope("/head");
    weight_vector("output_norm.weight", m_.output_norm());
    const std::string h = rms_norm(x, "output_norm.weight");
    const Tensor& head = m_.head_f16();
    std::string w = "token_embd.weight";
    if (head.storage() != m_.embedding().storage()) {
      weight_tensor("output.weight", head);
      w = "output.weight";
    }
    head_product(h, w, head.dtype() == DType::f16);
  }

 private:
  const Model& m_;
  const TransformerConfig& c_;
  GraphBuilder& g_;
  std::string cos_, sin_, allowed_, lowest_, zero_point_;

  // logits = h [B, S, hidden] x head[vocab, hidden]^T in f32, as Gemm(transB) over slices of the vocabulary.
  // Each slice's f32 copy of the f16 head (Slice + Cast of an initializer) stays under 512 MB, so ONNX Runtime
  // folds it once at load (it refuses to fold outputs past 1 GB, and would then convert the whole head on every
  // call); Gemm's transB needs no transposed copy.
  void head_product(const std::string& h, const std::string& w, bool f16) {
    constexpr int64_t kSliceFloats = int64_t{128} << 20;  // 512 MB of f32
    const int64_t rows = std::max<int64_t>(1, kSliceFloats / c_.hidden);
    const std::string h2 = g_.node("Reshape", {h, g_.const_i64({-1, c_.hidden})});
    std::vector<std::string> parts;
    for (int64_t r0 = 0; r0 < c_.vocab; r0 += rows) {
      const int64_t r1 = std::min(c_.vocab, r0 + rows);
      std::string slice = w;
      if (r0 > 0 || r1 < c_.vocab)
        slice = g_.node("Slice", {w, g_.const_i64({r0}), g_.const_i64({r1}), g_.const_i64({0})});
      if (f16) slice = cast(slice, onnx_io::kFloat);
      parts.push_back(g_.node("Gemm", {h2, slice}, {Attr::integer("transB", 1)}));
    }
    const std::string l2 = parts.size() == 1 ? parts.front() : g_.node("Concat", parts, {Attr::integer("axis", 1)});
    const std::string shape = g_.node("Concat", {g_.node("Shape", {"input_ids"}), g_.const_i64({c_.vocab})}, {Attr::integer("axis", 0)});
    g_.node("Reshape", {l2, shape}, {}, {"logits"});
  }

  std::string cast(const std::string& x, int32_t to) { return g_.node("Cast", {x}, {Attr::integer("to", to)}); }

  void weight_tensor(const std::string& name, const Tensor& t) {
    const Tensor c = t.contiguous();
    const int32_t type = c.dtype() == DType::f16 ? onnx_io::kFloat16 : onnx_io::kFloat;
    BITNET_CHECK(c.dtype() == DType::f16 || c.dtype() == DType::f32, "[onnx] {} must be F16 or F32", name);
    g_.initializer(name, type, {c.size(0), c.size(1)}, bytes_of(c.data(), c.nbytes()));
  }
  void weight_vector(const std::string& name, const std::vector<float>& v) {
    g_.initializer(name, onnx_io::kFloat, {static_cast<int64_t>(v.size())}, bytes_of(v.data(), v.size() * 4));
  }

  // allowed [B, 1, S, T]: key j is visible to query i when j <= past + i and attention_mask[b, j] != 0.
  void build_mask() {
    g_.set_scope("/mask");
    const std::string s = g_.node("Shape", {"input_ids"}, {Attr::integer("start", 1), Attr::integer("end", 2)});
    const std::string t = g_.node("Shape", {"attention_mask"}, {Attr::integer("start", 1), Attr::integer("end", 2)});
    const std::string t0 = g_.node("Squeeze", {t});
    const std::string p0 = g_.node("Squeeze", {g_.node("Sub", {t, s})});
    const std::string one = g_.const_i64({1}, true), zero = g_.const_i64({0}, true);
    const std::string q_pos = g_.node("Range", {p0, t0, one});
    const std::string k_pos = g_.node("Range", {zero, t0, one});
    const std::string causal = g_.node("LessOrEqual", {g_.node("Unsqueeze", {k_pos, g_.const_i64({0})}),
                                                       g_.node("Unsqueeze", {q_pos, g_.const_i64({1})})});
    const std::string pad = g_.node("Unsqueeze", {cast("attention_mask", onnx_io::kBool), g_.const_i64({1, 2})});
    allowed_ = g_.node("And", {causal, pad});
    lowest_ = g_.const_f32(std::numeric_limits<float>::lowest());
  }

  // (x * inv) * g with inv = 1 / sqrt(mean(x^2) + eps) computed in double, as the engine does.
  std::string rms_norm(const std::string& x, const std::string& gamma) {
    const std::string xd = cast(x, onnx_io::kDouble);
    const std::string ms = g_.node("ReduceMean", {g_.node("Mul", {xd, xd})},
                                   {Attr::integers("axes", {-1}), Attr::integer("keepdims", 1)});
    const std::string inv = cast(g_.node("Reciprocal", {g_.node("Sqrt", {g_.node("Add", {ms, g_.const_f64(static_cast<double>(c_.norm_eps))})})}),
                                 onnx_io::kFloat);
    return g_.node("Mul", {g_.node("Mul", {x, inv}), gamma});
  }

  struct Quantized {
    std::string q, dequant;  // q: the int8 value + 128 as UINT8 (see quantize)
  };
  // Per-token absmax int8, as kernels/act_quant: s = 127 / max(max|x|, 1e-5), dequant = 1 / s. The int8 value q
  // travels as the uint8 q + 128 with MatMulInteger's a_zero_point = 128, which subtracts it back exactly:
  // ONNX Runtime's integer GEMM is fast for uint8 x int8 (its x86 kernels' native form) and about 50x slower for
  // int8 x int8 (2.1 against 115 GB/s of weights on a 2560 x 6912 matrix, 2 threads, this machine).
  Quantized quantize(const std::string& x) {
    const std::string amax = g_.node("ReduceMax", {g_.node("Abs", {x})}, {Attr::integers("axes", {-1}), Attr::integer("keepdims", 1)});
    const std::string s = g_.node("Div", {g_.const_f32(127.0f), g_.node("Max", {amax, g_.const_f32(1e-5f)})});
    const std::string r = g_.node("Clip", {g_.node("Round", {g_.node("Mul", {x, s})}), g_.const_f32(-128.0f), g_.const_f32(127.0f)});
    return {cast(g_.node("Add", {r, g_.const_f32(128.0f)}), onnx_io::kUint8), g_.node("Reciprocal", {s})};
  }

  std::string bitlinear(const Quantized& a, const std::string& name, const TernaryMatrix& w) {
    BITNET_CHECK(w.row_scales().empty(), "[onnx] {} has per-row scales; the exported graph has one scale per tensor", name);
    const std::vector<int8_t> v = w.unpack();  // [rows = out, cols = in]
    std::vector<int8_t> t(v.size());           // [in, out]
    for (int64_t r = 0; r < w.rows(); ++r)
      for (int64_t k = 0; k < w.cols(); ++k) t[static_cast<size_t>(k * w.rows() + r)] = v[static_cast<size_t>(r * w.cols() + k)];
    g_.initializer(name, onnx_io::kInt8, {w.cols(), w.rows()}, bytes_of(t.data(), t.size()),
                   "ternary {-1, 0, 1}, [in_features, out_features]");
    const float scale = w.scale();
    const std::string scale_name = name + std::string(onnx_io::kScaleSuffix);
    g_.initializer(scale_name, onnx_io::kFloat, {}, bytes_of(&scale, 4));
    ternary_weights += v.size();
    const std::string acc = g_.node("MatMulInteger", {a.q, name, zero_point_128()});
    return g_.node("Mul", {cast(acc, onnx_io::kFloat), g_.node("Mul", {a.dequant, scale_name})});
  }

  // [B, S, heads * d] -> rotated [B, S, heads, d] (element i with i + d/2, as transformers' rotate_half).
  std::string rope(const std::string& x, int64_t heads) {
    const int64_t d = c_.head_dim, half = d / 2;
    const std::string x4 = g_.node("Reshape", {x, g_.const_i64({0, 0, heads, d})});
    const std::string axes = g_.const_i64({3});
    const std::string a = g_.node("Slice", {x4, g_.const_i64({0}), g_.const_i64({half}), axes});
    const std::string b = g_.node("Slice", {x4, g_.const_i64({half}), g_.const_i64({d}), axes});
    const std::string ra = g_.node("Sub", {g_.node("Mul", {a, cos_}), g_.node("Mul", {b, sin_})});
    const std::string rb = g_.node("Add", {g_.node("Mul", {b, cos_}), g_.node("Mul", {a, sin_})});
    return g_.node("Concat", {ra, rb}, {Attr::integer("axis", 3)});
  }

  std::string zero_point_128() {
    if (zero_point_.empty()) {
      const uint8_t zp = 128;
      zero_point_ = "const.a_zero_point";
      g_.initializer(zero_point_, onnx_io::kUint8, {}, bytes_of(&zp, 1));
    }
    return zero_point_;
  }

  std::string to_f16_and_back(const std::string& x) { return cast(cast(x, onnx_io::kFloat16), onnx_io::kFloat); }

  // [B, kv_heads, T, d] -> [B, heads, T, d]: each KV head serves its group of query heads.
  std::string expand_kv(const std::string& x) {
    const int64_t group = c_.heads / c_.kv_heads;
    if (group == 1) return x;
    const std::string e = g_.node("Expand", {g_.node("Unsqueeze", {x, g_.const_i64({2})}), g_.const_i64({1, 1, group, 1, 1})});
    return g_.node("Reshape", {e, g_.const_i64({0, c_.heads, -1, c_.head_dim})});
  }

  std::string layer(int64_t l, const std::string& x_in) {
    const LayerWeights& w = m_.layers()[static_cast<size_t>(l)];
    const std::string b = fmt::format("blk.{}.", l);
    const std::string layer_scope = fmt::format("/layers.{}", l);
    g_.set_scope(layer_scope + "/attn");
    weight_vector(b + "attn_norm.weight", w.attn_norm);
    weight_vector(b + "ffn_norm.weight", w.ffn_norm);
    if (c_.sub_norms) {
      weight_vector(b + "attn_sub_norm.weight", w.attn_sub_norm);
      weight_vector(b + "ffn_sub_norm.weight", w.ffn_sub_norm);
    }
    const Quantized a = quantize(rms_norm(x_in, b + "attn_norm.weight"));
    const std::string q = bitlinear(a, b + "attn_q.weight", w.wq);
    const std::string k = bitlinear(a, b + "attn_k.weight", w.wk);
    const std::string v = bitlinear(a, b + "attn_v.weight", w.wv);
    const std::vector<int64_t> bhsd = {0, 2, 1, 3};
    const std::string qh = g_.node("Transpose", {rope(q, c_.heads)}, {Attr::integers("perm", bhsd)});
    const std::string kh = g_.node("Transpose", {to_f16_and_back(rope(k, c_.kv_heads))}, {Attr::integers("perm", bhsd)});
    const std::string v4 = g_.node("Reshape", {v, g_.const_i64({0, 0, c_.kv_heads, c_.head_dim})});
    const std::string vh = g_.node("Transpose", {to_f16_and_back(v4)}, {Attr::integers("perm", bhsd)});
    const std::string pk = fmt::format("present.{}.key", l), pv = fmt::format("present.{}.value", l);
    g_.node("Concat", {fmt::format("past_key_values.{}.key", l), kh}, {Attr::integer("axis", 2)}, {pk});
    g_.node("Concat", {fmt::format("past_key_values.{}.value", l), vh}, {Attr::integer("axis", 2)}, {pv});
    const std::string kt = g_.node("Transpose", {expand_kv(pk)}, {Attr::integers("perm", {0, 1, 3, 2})});
    const float scale = 1.0f / std::sqrt(static_cast<float>(c_.head_dim));  // as engine_attention
    const std::string scores = g_.node("Mul", {g_.node("MatMul", {qh, kt}), g_.const_f32(scale)});
    const std::string probs = g_.node("Softmax", {g_.node("Where", {allowed_, scores, lowest_})}, {Attr::integer("axis", -1)});
    const std::string o = g_.node("MatMul", {probs, expand_kv(pv)});
    const std::string o2 = g_.node("Reshape", {g_.node("Transpose", {o}, {Attr::integers("perm", bhsd)}),
                                               g_.const_i64({0, 0, c_.heads * c_.head_dim})});
    const Quantized ao = c_.sub_norms ? quantize(rms_norm(o2, b + "attn_sub_norm.weight")) : quantize(o2);
    const std::string x_mid = g_.node("Add", {x_in, bitlinear(ao, b + "attn_output.weight", w.wo)});

    g_.set_scope(layer_scope + "/mlp");
    const Quantized f = quantize(rms_norm(x_mid, b + "ffn_norm.weight"));
    const std::string gate = bitlinear(f, b + "ffn_gate.weight", w.w_gate);
    const std::string up = bitlinear(f, b + "ffn_up.weight", w.w_up);
    std::string act;
    if (c_.activation == FfnActivation::relu2) {
      const std::string r = g_.node("Relu", {gate});
      act = g_.node("Mul", {r, r});
    } else {
      act = g_.node("Mul", {gate, g_.node("Sigmoid", {gate})});
    }
    const std::string h = g_.node("Mul", {act, up});
    const Quantized fd = c_.sub_norms ? quantize(rms_norm(h, b + "ffn_sub_norm.weight")) : quantize(h);
    return g_.node("Add", {x_mid, bitlinear(fd, b + "ffn_down.weight", w.w_down)});
  }
};

std::optional<GgmlType> projection_type(const GgufFile& f) {
  const GgufTensorInfo* t = f.find_tensor("blk.0.attn_q.weight");
  if (t && (t->type == GgmlType::i2_s || t->type == GgmlType::tq1_0 || t->type == GgmlType::tq2_0)) return t->type;
  return std::nullopt;
}

}  // namespace

OnnxExportSummary export_onnx(const std::string& gguf_path, const std::string& out_path, const OnnxExportOptions& options) {
  BITNET_CHECK(out_path.ends_with(".onnx"), "[onnx] output '{}' must end in .onnx", out_path);
  const GgufFile f = GgufFile::open(gguf_path);
  const Model m = Model::load_gguf(gguf_path);
  const TransformerConfig& c = m.config();
  BITNET_CHECK(c.rope_scaling.type != RopeType::dynamic,
               "[onnx] '{}': dynamic RoPE scaling changes the frequencies with the sequence length, which a graph of "
               "fixed tables does not do; it cannot be exported", gguf_path);

  // Size: one byte per ternary weight, plus the float tensors and the RoPE tables.
  uint64_t weight_bytes = m.embedding().nbytes() + static_cast<uint64_t>(c.context * c.head_dim * 4);
  if (m.head_f16().storage() != m.embedding().storage()) weight_bytes += m.head_f16().nbytes();
  for (const auto& l : m.layers())
    for (const TernaryMatrix* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      weight_bytes += static_cast<uint64_t>(t->rows() * t->cols());
  const bool external = options.external_data == OnnxExportOptions::ExternalData::always ||
                        (options.external_data == OnnxExportOptions::ExternalData::automatic && weight_bytes > 1900ull << 20);

  OnnxExportSummary s;
  const std::string partial = out_path + ".partial";
  const std::string data_name = fs::path(out_path).filename().string() + ".data";
  const std::string data_path = (fs::path(out_path).parent_path() / data_name).string();
  const std::string data_partial = data_path + ".partial";
  struct Cleanup {
    std::vector<std::string> paths;
    std::FILE* file = nullptr;
    ~Cleanup() {
      if (file) std::fclose(file);
      for (const auto& p : paths) ::unlink(p.c_str());
    }
  } cleanup;
  cleanup.paths = {partial, data_partial};
  if (external) {
    cleanup.file = std::fopen(data_partial.c_str(), "wb");
    BITNET_CHECK(cleanup.file != nullptr, "[onnx] cannot create '{}'", data_partial);
  }

  onnx::ModelProto proto;
  proto.set_ir_version(kOnnxIrVersion);
  proto.set_producer_name("bitnet");
  proto.set_producer_version(options.producer_version);
  proto.set_domain("ai.bitnet");
  proto.set_model_version(1);
  proto.set_doc_string(fmt::format("{} exported from {}: BitNet b1.58 (ternary weights, int8 activations)",
                                   c.arch, fs::path(gguf_path).filename().string()));
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name(c.arch);
  const std::string batch = "batch_size", seq = "sequence_length", past = "past_sequence_length",
                    total = "total_sequence_length";
  const std::string kvh = std::to_string(c.kv_heads), hd = std::to_string(c.head_dim);
  value_info(graph->add_input(), "input_ids", onnx_io::kInt64, {batch, seq});
  value_info(graph->add_input(), "attention_mask", onnx_io::kInt64, {batch, total});
  value_info(graph->add_input(), "position_ids", onnx_io::kInt64, {batch, seq});
  for (int64_t l = 0; l < c.layers; ++l)
    for (const char* kv : {"key", "value"})
      value_info(graph->add_input(), fmt::format("past_key_values.{}.{}", l, kv), onnx_io::kFloat, {batch, kvh, past, hd});
  value_info(graph->add_output(), "logits", onnx_io::kFloat, {batch, seq, std::to_string(c.vocab)});
  for (int64_t l = 0; l < c.layers; ++l)
    for (const char* kv : {"key", "value"})
      value_info(graph->add_output(), fmt::format("present.{}.{}", l, kv), onnx_io::kFloat, {batch, kvh, total, hd});

  GraphBuilder g(graph, cleanup.file, data_name);
  DecoderGraph dg(m, g);
  dg.build();
  s.nodes = g.nodes();
  s.initializers = graph->initializer_size();
  s.ternary_weights = dg.ternary_weights;

  auto meta = [&](std::string_view k, const std::string& v) {
    auto* p = proto.add_metadata_props();
    p->set_key(std::string(k));
    p->set_value(v);
  };
  meta(onnx_io::kFormatKey, std::string(onnx_io::kFormatValue));
  if (const auto t = projection_type(f)) meta(onnx_io::kTernaryTypeKey, std::string(ggml_type_name(*t)));
  meta(onnx_io::kGgufKey, onnx_io::base64_encode(side_gguf(f)));

  const size_t size = proto.ByteSizeLong();
  BITNET_CHECK(size < (size_t{1} << 31) - 1,
               "[onnx] the graph with inline weights is {} bytes, past protobuf's 2 GB: use external data", size);
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    BITNET_CHECK(out && proto.SerializeToOstream(&out), "[onnx] cannot write '{}'", partial);
    out.close();
    BITNET_CHECK(out.good(), "[onnx] cannot write '{}' (disk full?)", partial);
  }
  s.onnx_bytes = size;
  if (external) {
    const bool ok = std::fflush(cleanup.file) == 0 && std::fclose(cleanup.file) == 0;
    cleanup.file = nullptr;
    BITNET_CHECK(ok, "[onnx] cannot write '{}' (disk full?)", data_partial);
    fs::rename(data_partial, data_path);
    s.external_bytes = g.external_bytes();
    s.external_path = data_path;
  }
  fs::rename(partial, out_path);
  cleanup.paths.clear();
  return s;
}

std::optional<GgmlType> onnx_source_ternary_type(const std::string& path) {
  const onnx_io::OnnxFile f = onnx_io::OnnxFile::open(path);
  const auto it = f.metadata().find(std::string(onnx_io::kTernaryTypeKey));
  if (f.metadata().count(std::string(onnx_io::kFormatKey)) == 0 || it == f.metadata().end()) return std::nullopt;
  return parse_ggml_type(it->second);
}

}  // namespace bitnet
