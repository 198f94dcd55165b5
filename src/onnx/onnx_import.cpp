// ONNX files into GGUF (`bitnet convert`, and Model::load through a temporary GGUF, as for HF directories).
// Two kinds of graph are recognised:
//  - bitnet's own export (metadata bitnet.format): weights under their GGUF names, ternary projections as INT8
//    [in, out] with a FLOAT `<name>_scale`, the rest of the GGUF (metadata, rope_freqs) in metadata_props. Its
//    tensors come back byte for byte in the ternary type it was exported from.
//  - a torch.onnx export of a transformers BitNetForCausalLM / LlamaForCausalLM (parameter names kept, as the
//    dynamo exporter does), with its config.json (and tokenizer files) beside the .onnx file, as Optimum lays
//    out an export. Its weights go through the Hugging Face rules of the converter (latent weights are
//    ternarized with absmean, as the graph's online quantization does).
// Anything else is refused naming the first node or initializer that does not fit.
#include <bitnet/error.h>
#include <bitnet/model_files.h>
#include <bitnet/onnx.h>
#include <bitnet/ternary_formats.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "io/convert_internal.h"
#include "onnx/base64.h"
#include "onnx/onnx_file.h"
#include "onnx/onnx_layout.h"

namespace bitnet::convert_detail {

namespace fs = std::filesystem;
using onnx_io::OnnxFile;
using onnx_io::OnnxTensor;

namespace {

// Operators a decoder-only transformer graph is made of (our export, and what torch.onnx emits for
// transformers' Llama-family models, including the standard opset-23 fused forms). Anything else (convolutions,
// recurrent cells, control flow with subgraphs, custom domains) is not a model the engine's architecture can be.
const std::set<std::string, std::less<>>& decoder_ops() {
  static const std::set<std::string, std::less<>> ops = {
      "Abs", "Add", "And", "Attention", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "Cast", "CastLike", "Ceil", "Clip", "Concat", "Constant", "ConstantOfShape",
      "Cos", "CumSum", "Div", "Equal", "Exp", "Expand", "Flatten", "Floor", "Gather", "GatherElements", "Greater",
      "Gemm", "GreaterOrEqual", "Identity", "IsInf", "IsNaN", "Less", "LessOrEqual", "Log", "MatMul", "MatMulInteger", "Max",
      "Min", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "RMSNormalization", "Range", "Reciprocal", "ReduceMax",
      "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape", "RotaryEmbedding", "Round", "ScatterND", "Shape",
      "Sigmoid", "Sign", "Sin", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Tile", "Transpose",
      "Trilu", "Unsqueeze", "Where", "Xor"};
  return ops;
}

void check_nodes(const OnnxFile& f) {
  for (size_t i = 0; i < f.nodes().size(); ++i) {
    const auto& n = f.nodes()[i];
    if (!n.domain.empty() && n.domain != "ai.onnx")
      fail("[onnx] {}: node #{} '{}' ({}) is in the custom domain '{}'; only standard ONNX operators are read", f.path(),
           i, n.name, n.op_type, n.domain);
    if (!decoder_ops().contains(n.op_type))
      fail("[onnx] {}: node #{} '{}' is a {}, which a BitNet decoder graph does not have: this is not a model the "
           "engine's architecture can run", f.path(), i, n.name, n.op_type);
  }
}

std::string safetensors_dtype(const OnnxTensor& t) {
  switch (t.type) {
    case onnx_io::kFloat: return "F32";
    case onnx_io::kFloat16: return "F16";
    case onnx_io::kBfloat16: return "BF16";
    case onnx_io::kUint8: return "U8";
    default: return onnx_io::onnx_type_name(t.type);
  }
}

// A torch.onnx export's parameters as a Hugging Face checkpoint. A tied head exported once as lm_head.weight
// (the graph gathers the embedding from it) becomes the embedding.
class OnnxCheckpoint final : public CheckpointTensors {
 public:
  OnnxCheckpoint(const OnnxFile& f, const ModelConfig& cfg) {
    for (const OnnxTensor& t : f.initializers()) {
      if (!hf_to_gguf_name(t.name) && !t.name.ends_with(".weight_scale")) {
        // Parameters keep their module path (model.layers.0.mlp.up_proj.weight); generated constants do not.
        if (t.name.ends_with(".weight") || t.name.ends_with(".bias"))
          fail("[onnx] {}: initializer '{}' ({} {}) is a parameter the engine's architecture has no place for", f.path(),
               t.name, onnx_io::onnx_type_name(t.type), t.dims);
        if (t.elements > (int64_t{1} << 20))
          fail("[onnx] {}: initializer '{}' ({} {}) is too large for a graph constant and has no parameter name: if it "
               "is a weight, export with torch.onnx.export(..., dynamo=True), which keeps parameter names", f.path(),
               t.name, onnx_io::onnx_type_name(t.type), t.dims);
        continue;
      }
      add(t.name, t);
    }
    if (!tensors_.contains("model.embed_tokens.weight") && cfg.tie_word_embeddings) {
      if (const auto it = tensors_.find("lm_head.weight"); it != tensors_.end()) {
        const SourceTensor e = it->second;
        tensors_.erase(it);
        tensors_.emplace("model.embed_tokens.weight", e);
      }
    }
    for (const auto& [n, t] : tensors_) {
      // A packed (offline) checkpoint's weight_scale without its weight: the exporter folded the unpacking of
      // the uint8 weights into constants that carry no parameter name.
      if (n.ends_with(".weight_scale") && !tensors_.contains(n.substr(0, n.size() - 6)))
        fail("[onnx] {}: '{}' is there but its packed weight '{}' is not: torch.onnx folds the unpacking of packed "
             "(offline) BitNet weights into unnamed constants. Export the latent-weight checkpoint "
             "(quantization_mode \"online\"), or convert the checkpoint directory itself", f.path(), n,
             n.substr(0, n.size() - 6));
      names_.push_back(n);
    }
  }
  const std::vector<std::string>& names() const override { return names_; }
  const SourceTensor* find(std::string_view name) const override {
    const auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }

 private:
  void add(const std::string& name, const OnnxTensor& t) {
    tensors_.emplace(name, SourceTensor{safetensors_dtype(t), t.dims, t.data});
  }
  std::vector<std::string> names_;
  std::map<std::string, SourceTensor, std::less<>> tensors_;
};

// The tensors every layer of the model in `side` must have (so that a file missing one is refused here, by name).
void check_complete(const std::string& path, const std::set<std::string, std::less<>>& have, int64_t layers,
                    bool sub_norms) {
  std::vector<std::string> need = {"token_embd.weight", "output_norm.weight"};
  for (int64_t l = 0; l < layers; ++l)
    for (const char* w : {"attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
      need.push_back(fmt::format("blk.{}.{}.weight", l, w));
  if (sub_norms)
    for (int64_t l = 0; l < layers; ++l)
      for (const char* w : {"attn_sub_norm", "ffn_sub_norm"}) need.push_back(fmt::format("blk.{}.{}.weight", l, w));
  for (const auto& n : need)
    if (!have.contains(n)) fail("[onnx] {}: the weight '{}' is missing", path, n);
}

// bitnet's own export back to GGUF.
void convert_own_export(const OnnxFile& f, const std::string& output, const ConvertOptions& o, ConvertSummary& s) {
  const auto blob_it = f.metadata().find(std::string(onnx_io::kGgufKey));
  if (blob_it == f.metadata().end()) fail("[onnx] {}: metadata_props '{}' is missing", f.path(), onnx_io::kGgufKey);
  const auto blob = onnx_io::base64_decode(blob_it->second);
  if (!blob) fail("[onnx] {}: metadata_props '{}' is not base64", f.path(), onnx_io::kGgufKey);
  const GgufFile side = GgufFile::from_bytes(*blob, f.path() + " (metadata_props bitnet.gguf)");
  const std::string arch = side.architecture();
  if (arch.empty()) fail("[onnx] {}: the GGUF metadata in '{}' has no general.architecture", f.path(), onnx_io::kGgufKey);
  const int64_t layers = side.get_int(arch + ".block_count");
  const int64_t heads = side.get_int(arch + ".attention.head_count");
  const GgufValue* kvh = side.find(arch + ".attention.head_count_kv");
  const int64_t kv_heads = kvh ? side.get_int(arch + ".attention.head_count_kv") : heads;
  GgmlType tt = o.ternary_type;
  if (const auto rec = f.metadata().find(std::string(onnx_io::kTernaryTypeKey));
      o.ternary_type_from_source && rec != f.metadata().end()) {
    tt = parse_ggml_type(rec->second);
    if (tt != GgmlType::i2_s && tt != GgmlType::tq1_0 && tt != GgmlType::tq2_0)
      fail("[onnx] {}: metadata_props {} is '{}'; expected i2_s, tq1_0 or tq2_0", f.path(), onnx_io::kTernaryTypeKey,
           rec->second);
  }

  std::vector<Item> items;
  for (const OnnxTensor& t : f.initializers()) {
    const std::string what = fmt::format("[onnx] {}: initializer '{}'", f.path(), t.name);
    if (t.name == onnx_io::kRopeCos || t.name == onnx_io::kRopeSin || t.name.starts_with("const.")) continue;
    if (t.name.ends_with(onnx_io::kScaleSuffix) && f.find(t.name.substr(0, t.name.size() - onnx_io::kScaleSuffix.size())))
      continue;  // consumed with its weight
    if (!onnx_io::is_graph_weight(t.name)) fail("{} is not a tensor of a BitNet model", what);
    if (is_ternary_projection(t.name)) {
      if (t.type != onnx_io::kInt8 || t.dims.size() != 2) fail("{} must be INT8 [in, out]; it is {} {}", what, onnx_io::onnx_type_name(t.type), t.dims);
      const OnnxTensor* sc = f.find(t.name + std::string(onnx_io::kScaleSuffix));
      if (sc == nullptr || sc->type != onnx_io::kFloat || sc->elements != 1)
        fail("{}: its FLOAT scalar '{}{}' is missing", what, t.name, onnx_io::kScaleSuffix);
      const int64_t cols = t.dims[0], rows = t.dims[1];
      ++s.ternary_tensors;
      const int64_t permute = llama_rope_permuted_heads(arch, t.name, heads, kv_heads);
      items.push_back({t.name, {cols, rows}, tt, [&t, sc, rows, cols, tt, permute, what] {
                         TernaryTensor tern;
                         tern.rows = rows;
                         tern.cols = cols;
                         std::memcpy(&tern.scale, sc->data.data(), 4);
                         if (!std::isfinite(tern.scale) || tern.scale <= 0.0f) fail("{}: scale {} is not a positive number", what, tern.scale);
                         tern.values.resize(static_cast<size_t>(rows * cols));
                         const auto* src = reinterpret_cast<const int8_t*>(t.data.data());
                         for (int64_t k = 0; k < cols; ++k)
                           for (int64_t r = 0; r < rows; ++r) {
                             const int8_t v = src[k * rows + r];
                             if (v < -1 || v > 1) fail("{}: value {} at [{}, {}] is not ternary", what, v, k, r);
                             tern.values[static_cast<size_t>(r * cols + k)] = v;
                           }
                         if (permute > 0) tern.values = permute_llama_rope_rows(tern.values, rows, cols, permute, true);
                         return emit_ternary(tern, tt);
                       }, {t.data}});
      continue;
    }
    GgmlType type;
    if (t.type == onnx_io::kFloat) type = GgmlType::f32;
    else if (t.type == onnx_io::kFloat16) type = GgmlType::f16;
    else fail("{} must be FLOAT or FLOAT16; it is {}", what, onnx_io::onnx_type_name(t.type));
    items.push_back({t.name, std::vector<int64_t>(t.dims.rbegin(), t.dims.rend()), type, nullptr, {t.data}, true});
  }
  // The tensors the graph does not use (rope_freqs.weight), as they were.
  for (const auto& t : side.tensors()) items.push_back({t.name, t.dims, t.type, nullptr, {side.tensor_data(t)}, true});
  std::set<std::string, std::less<>> have;
  for (const Item& it : items) have.insert(it.name);
  check_complete(f.path(), have, layers, arch == "bitnet-b1.58" || arch == "bitnet-25");
  std::vector<std::pair<std::string, GgufValue>> kv;
  for (const auto& [k, v] : side.metadata())
    if (k != "general.alignment" && k != "general.file_type") kv.emplace_back(k, v);
  kv.emplace_back("general.file_type", GgufValue::u32(file_type_for(tt)));
  write_gguf(output, std::move(kv), items, o, s);
}

}  // namespace

void convert_onnx(const std::string& input, const std::string& output, const ConvertOptions& o, ConvertSummary& s) {
  const OnnxFile f = OnnxFile::open(input);
  check_nodes(f);
  if (f.metadata().contains(std::string(onnx_io::kFormatKey))) {
    const std::string& v = f.metadata().at(std::string(onnx_io::kFormatKey));
    if (v != onnx_io::kFormatValue)
      fail("[onnx] {}: {} is '{}'; this build reads '{}'", input, onnx_io::kFormatKey, v, onnx_io::kFormatValue);
    convert_own_export(f, output, o, s);
    return;
  }
  // A torch.onnx export: the configuration is config.json beside it.
  const fs::path dir = fs::path(input).has_parent_path() ? fs::path(input).parent_path() : fs::path(".");
  const fs::path config = dir / "config.json";
  std::error_code ec;
  if (!fs::is_regular_file(config, ec))
    fail("[onnx] {}: not a bitnet export (no metadata_props '{}'), and no config.json beside it. A torch.onnx export "
         "of a transformers model needs its config.json in the same directory (model.config.save_pretrained(dir)), "
         "as Optimum lays out an export", input, onnx_io::kFormatKey);
  const ModelConfig cfg = load_model_config(config.string());
  if (!cfg.is_bitnet_checkpoint() && !o.quantize)
    fail("[onnx] {}: {} has no quantization_config: a full-precision model. Pass --quantize to ternarize its "
         "projections with absmean", input, config.string());
  const OnnxCheckpoint tensors(f, cfg);
  std::set<std::string, std::less<>> have;
  for (const auto& n : tensors.names())
    if (const auto g = hf_to_gguf_name(n)) have.insert(*g);
  const bool sub_norms = cfg.model_type == "bitnet" &&
                         (cfg.architectures.empty() || cfg.architectures.front() == "BitNetForCausalLM");
  check_complete(input, have, cfg.num_hidden_layers, sub_norms);
  s.notes.push_back(fmt::format("read {} as a torch.onnx export of {} with {}", input,
                                cfg.architectures.empty() ? cfg.model_type : cfg.architectures.front(), config.string()));
  // The graph quantizes latent weights online (absmean, as transformers' AutoBitLinear): so does the converter.
  ConvertOptions options = o;
  options.quantize = options.quantize || cfg.is_bitnet_checkpoint();
  convert_checkpoint(input, dir.string(), cfg, tensors, output, options, s);
}

}  // namespace bitnet::convert_detail
