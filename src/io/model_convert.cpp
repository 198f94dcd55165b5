// Streaming model conversion. The output header is written from the input's shapes, then each tensor is read
// from the mmap'd input, converted in one buffer and written, so memory stays near one tensor (plus the OS page
// cache) whatever the model size. Ternary tensors go through the canonical form (ternary_formats.h).
#include <bitnet/dtype.h>
#include <bitnet/error.h>
#include <bitnet/memory.h>
#include <bitnet/model_files.h>
#include <bitnet/rope_gguf.h>
#include <bitnet/safetensors.h>
#include <bitnet/ternary_formats.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "io/convert_internal.h"

#include <sys/mman.h>
#include <unistd.h>

namespace bitnet {

namespace fs = std::filesystem;

namespace convert_detail {

const SourceTensor& CheckpointTensors::at(std::string_view name) const {
  const SourceTensor* t = find(name);
  if (t == nullptr) fail("[convert] tensor '{}' is missing", name);
  return *t;
}

namespace {
// A safetensors checkpoint (one file or shards) as CheckpointTensors.
class SafetensorsTensors final : public CheckpointTensors {
 public:
  explicit SafetensorsTensors(const SafetensorsModel& m) {
    for (const auto& n : m.names()) {
      const auto& e = m.tensor(n);
      tensors_.emplace(n, SourceTensor{std::string(st_dtype_name(e.info->dtype)), e.info->shape, m.data(e)});
    }
    names_ = m.names();
  }
  const std::vector<std::string>& names() const override { return names_; }
  const SourceTensor* find(std::string_view name) const override {
    const auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }

 private:
  std::vector<std::string> names_;
  std::map<std::string, SourceTensor, std::less<>> tensors_;
};
}  // namespace

// Drops the pages of input bytes already converted from this process's resident set. Without it the RSS of a
// conversion grows to the whole input file even though only one tensor is live.
void release_pages(std::span<const std::byte> bytes) { release_mapped_pages(bytes.data(), bytes.size()); }

std::optional<TernaryFormat> ternary_format_of(GgmlType t) {
  switch (t) {
    case GgmlType::tq1_0: return TernaryFormat::tq1_0;
    case GgmlType::tq2_0: return TernaryFormat::tq2_0;
    case GgmlType::i2_s: return TernaryFormat::i2_s;
    default: return std::nullopt;
  }
}

std::span<const uint8_t> u8span(std::span<const std::byte> s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Elements of a plain float tensor as f32 (one tensor's worth of memory).
std::vector<float> to_f32(std::span<const std::byte> data, std::string_view dtype, const std::string& what) {
  std::vector<float> out;
  if (dtype == "F32") {
    out.resize(data.size() / 4);
    std::memcpy(out.data(), data.data(), out.size() * 4);
  } else if (dtype == "F16" || dtype == "BF16") {
    out.resize(data.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t b;
      std::memcpy(&b, data.data() + 2 * i, 2);
      out[i] = dtype == "F16" ? f16_to_f32(b) : bf16_to_f32(b);
    }
  } else {
    fail("{}: dtype {} cannot be read as floats", what, dtype);
  }
  return out;
}

std::vector<uint8_t> from_f32(const std::vector<float>& v, GgmlType type) {
  std::vector<uint8_t> out;
  if (type == GgmlType::f32) {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
  } else {
    out.resize(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t b = type == GgmlType::f16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(out.data() + 2 * i, &b, 2);
    }
  }
  return out;
}

// Canonical ternary tensor -> output bytes of `type` (a ternary layout, or f16/f32 dequantized values).
std::vector<uint8_t> emit_ternary(const TernaryTensor& t, GgmlType type) {
  if (auto f = ternary_format_of(type)) return pack_ternary(*f, t.values, t.rows, t.cols, t.scale);
  std::vector<float> w(t.values.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(t.values[i]) * t.scale;
  return from_f32(w, type);
}

// Float projection weights -> canonical: already ternary, or absmean when allowed, or refused.
TernaryTensor ternarize(const std::vector<float>& w, int64_t rows, int64_t cols, const std::string& what,
                        const ConvertOptions& o, ConvertSummary& s) {
  TernaryTensor t;
  if (detect_ternary_float(w, rows, cols, &t)) return t;
  if (!o.quantize)
    fail("{} holds non-ternary values (latent weights); refusing to write it as ternary. Pass --quantize to "
         "ternarize it with absmean (W_t = clamp(round(W / mean|W|), -1, 1))", what);
  ++s.quantized_tensors;
  return quantize_absmean(w, rows, cols);
}

std::string arch_for(const ModelConfig& c) {
  std::string arch;
  for (const auto& a : c.architectures) {
    if (a == "BitNetForCausalLM") arch = "bitnet-b1.58";
    else if (a == "BitnetForCausalLM") arch = "bitnet";
    else if (a == "LlamaForCausalLM" || a == "LLaMAForCausalLM") arch = "llama";
    if (!arch.empty()) break;
  }
  if (arch.empty() && c.model_type == "bitnet") arch = "bitnet-b1.58";
  if (arch.empty() && c.model_type == "llama") arch = "llama";
  if (arch.empty())
    fail("config.json: architectures {} / model_type '{}' is not a BitNet or Llama model", c.architectures, c.model_type);
  // The engine's activation follows the architecture (BitNet b1.58 2B4T: gated ReLU^2; 1bitLLM and Llama: SiLU).
  const std::string_view act = arch == "bitnet-b1.58" ? "relu2" : "silu";
  if (c.hidden_act != act)
    fail("config.json: hidden_act is \"{}\" but the {} architecture computes \"{}\"; this combination is not "
         "supported", c.hidden_act, arch, act);
  return arch;
}

uint32_t file_type_for(GgmlType t) {
  switch (t) {
    case GgmlType::f32: return 0;
    case GgmlType::f16: return 1;
    case GgmlType::tq1_0: return 36;
    case GgmlType::tq2_0: return 37;
    case GgmlType::i2_s: return 40;
    default: return 1;
  }
}

// ---- inputs ---------------------------------------------------------------------------------------------------
void plan_checkpoint(const std::string& input, const CheckpointTensors& m, const ModelConfig& cfg, const ConvertOptions& o,
                     ConvertSummary& s, std::vector<Item>& items) {
  std::optional<ScaleConvention> conv = o.scale_convention;
  if (!conv && cfg.quantization) conv = cfg.quantization->scale_convention();
  const std::string arch = arch_for(cfg);
  for (const auto& hf_name : m.names()) {
    if (hf_name.size() > 13 && hf_name.ends_with(".weight_scale")) continue;  // consumed with its weight
    const auto gname = hf_to_gguf_name(hf_name);
    if (!gname) {
      s.notes.push_back(fmt::format("skipped tensor '{}' (no GGUF name for it)", hf_name));
      continue;
    }
    const SourceTensor& info = m.at(hf_name);
    const std::string dtype = info.dtype;
    const std::string what = fmt::format("{}: tensor '{}'", input, hf_name);
    if (info.shape.empty() || info.shape.size() > 2) fail("{} has shape {}; expected 1 or 2 dims", what, info.shape);
    if (is_ternary_projection(*gname)) {
      if (info.shape.size() != 2) fail("{}: a projection weight must be 2-D", what);
      const bool packed = dtype == "U8";
      const int64_t rows = packed ? info.shape[0] * 4 : info.shape[0], cols = info.shape[1];
      const std::string scale_name = hf_name.substr(0, hf_name.size() - 6) + "weight_scale";
      if (packed && !m.find(scale_name)) fail("{} is packed uint8 but '{}' is missing", what, scale_name);
      if (packed && !conv)
        fail("{}: packed ternary weights but config.json has no quantization_config.linear_class; pass "
             "--scale-convention multiply|divide", input);
      ++s.ternary_tensors;
      const GgmlType type = o.ternary_type;
      // llama.cpp's "llama" files keep q/k rows in interleaved-RoPE order (model_files.h).
      const int64_t permute_heads =
          llama_rope_permuted_heads(arch, *gname, cfg.num_attention_heads, cfg.num_key_value_heads);
      items.push_back({*gname, {cols, rows}, type, [&m, &s, &o, hf_name, scale_name, packed, rows, cols, what, type,
                                                     dtype, conv, permute_heads]() {
        const SourceTensor& e = m.at(hf_name);
        TernaryTensor t;
        if (packed) {
          t = unpack_ternary(TernaryFormat::hf_u8, u8span(e.data), rows, cols);
          const SourceTensor& se = m.at(scale_name);
          const auto sv = to_f32(se.data, se.dtype, scale_name);
          if (sv.empty()) fail("{}: '{}' is empty", what, scale_name);
          if (!std::isfinite(sv[0]) || sv[0] <= 0.0f) fail("{}: weight_scale is {}; expected a positive finite value", what, sv[0]);
          t.scale = hf_scale_to_canonical(sv[0], *conv);
        } else {
          t = ternarize(to_f32(e.data, dtype, what), rows, cols, what, o, s);
        }
        if (permute_heads > 0) t.values = permute_llama_rope_rows(t.values, rows, cols, permute_heads, true);
        return emit_ternary(t, type);
      }, {info.data}});
      if (packed) items.back().inputs.push_back(m.at(scale_name).data);
      continue;
    }
    // Norms (1-D) become F32 as llama.cpp expects; other float tensors keep their precision.
    GgmlType type;
    if (info.shape.size() == 1) type = GgmlType::f32;
    else if (o.float_type) type = *o.float_type;
    else if (dtype == "BF16") type = GgmlType::bf16;
    else if (dtype == "F16") type = GgmlType::f16;
    else if (dtype == "F32") type = GgmlType::f32;
    else fail("{} has dtype {}; expected a float type", what, dtype);
    std::vector<int64_t> dims(info.shape.rbegin(), info.shape.rend());
    items.push_back({*gname, dims, type, [&m, hf_name, dtype, type, what]() {
      return from_f32(to_f32(m.at(hf_name).data, dtype, what), type);
    }, {info.data}});
    items.back().passthrough = (type == GgmlType::bf16 && dtype == "BF16") || (type == GgmlType::f16 && dtype == "F16") ||
                               (type == GgmlType::f32 && dtype == "F32");
  }
}

void plan_from_gguf(const GgufFile& in, const ConvertOptions& o, ConvertSummary& s, std::vector<Item>& items) {
  for (const auto& t : in.tensors()) {
    const std::string what = fmt::format("{}: tensor '{}'", in.path(), t.name);
    const auto src_fmt = ternary_format_of(t.type);
    const bool float_proj = is_ternary_projection(t.name) && t.dims.size() == 2 &&
                            (t.type == GgmlType::f32 || t.type == GgmlType::f16 || t.type == GgmlType::bf16);
    if (!src_fmt && !float_proj) {
      items.push_back({t.name, t.dims, t.type, nullptr, {in.tensor_data(t)}, true});
      continue;
    }
    if (t.dims.size() != 2) fail("{} is ternary but has {} dims; expected 2", what, t.dims.size());
    ++s.ternary_tensors;
    const int64_t rows = t.dims[1], cols = t.dims[0];
    const GgmlType type = o.ternary_type;
    items.push_back({t.name, t.dims, type, [&in, &t, &o, &s, src_fmt, rows, cols, what, type]() {
      TernaryTensor tt;
      if (src_fmt) {
        try {
          tt = unpack_ternary(*src_fmt, u8span(in.tensor_data(t)), rows, cols);
        } catch (const Error& e) {
          if (!o.quantize) fail("{}: {} (pass --quantize to re-ternarize it with absmean)", what, e.what());
          tt = ternarize(dequantize_ternary(*src_fmt, u8span(in.tensor_data(t)), rows, cols), rows, cols, what, o, s);
        }
      } else {
        const std::string_view dt = t.type == GgmlType::f32 ? "F32" : t.type == GgmlType::f16 ? "F16" : "BF16";
        tt = ternarize(to_f32(in.tensor_data(t), dt, what), rows, cols, what, o, s);
      }
      return emit_ternary(tt, type);
    }, {in.tensor_data(t)}});
  }
}

void write_gguf(const std::string& output, std::vector<std::pair<std::string, GgufValue>> kv, std::vector<Item>& items,
                const ConvertOptions& o, ConvertSummary& s) {
  GgufWriter w;
  for (auto& [k, v] : kv) w.set(k, std::move(v));
  for (const auto& it : items) s.output_bytes += w.add_tensor(it.name, it.dims, it.type);
  w.write_header(output);
  for (size_t i = 0; i < items.size(); ++i) {
    if (o.progress) o.progress(i, items.size(), items[i].name);
    if (items[i].passthrough) {
      w.write_tensor(items[i].inputs[0]);
    } else {
      const auto bytes = items[i].produce();
      w.write_tensor(std::as_bytes(std::span<const uint8_t>(bytes)));
    }
    for (const auto& in : items[i].inputs) release_pages(in);
  }
  if (o.progress) o.progress(items.size(), items.size(), "");
  w.finish();
  s.tensors = items.size();
}

// config.json for a safetensors output, from the GGUF's model keys; never overwrites an existing file.
void write_config_json(const GgufFile& in, const std::string& output, ConvertSummary& s) {
  const std::string arch = in.architecture();
  const fs::path path = fs::path(output).parent_path() / "config.json";
  std::error_code ec;
  if (arch.empty() || !in.find(arch + ".embedding_length")) {
    s.notes.push_back("config.json not written: the GGUF has no model keys");
    return;
  }
  if (fs::exists(path, ec)) {
    s.notes.push_back(fmt::format("config.json not written: {} exists", path.string()));
    return;
  }
  auto num = [&](const std::string& k) { return in.find(arch + "." + k) ? in.get_int(arch + "." + k) : int64_t(0); };
  nlohmann::ordered_json c;
  const bool b158 = arch == "bitnet-b1.58" || arch == "bitnet-25";
  c["architectures"] = {b158 ? "BitNetForCausalLM" : arch == "bitnet" ? "BitnetForCausalLM" : "LlamaForCausalLM"};
  c["model_type"] = b158 || arch == "bitnet" ? "bitnet" : "llama";
  const GgufValue* tokens = in.find("tokenizer.ggml.tokens");
  c["vocab_size"] = in.find(arch + ".vocab_size") ? num("vocab_size") : tokens ? int64_t(tokens->count) : 0;
  c["hidden_size"] = num("embedding_length");
  c["intermediate_size"] = num("feed_forward_length");
  c["num_hidden_layers"] = num("block_count");
  c["num_attention_heads"] = num("attention.head_count");
  c["num_key_value_heads"] = in.find(arch + ".attention.head_count_kv") ? num("attention.head_count_kv")
                                                                        : num("attention.head_count");
  if (in.find(arch + ".attention.key_length")) c["head_dim"] = num("attention.key_length");
  c["hidden_act"] = b158 ? "relu2" : "silu";
  c["max_position_embeddings"] = num("context_length");
  if (in.find(arch + ".attention.layer_norm_rms_epsilon"))
    c["rms_norm_eps"] = static_cast<float>(in.get_float(arch + ".attention.layer_norm_rms_epsilon"));
  if (in.find(arch + ".rope.freq_base")) c["rope_theta"] = in.get_float(arch + ".rope.freq_base");
  if (in.find_tensor("rope_freqs.weight")) {
    s.notes.push_back("config.json not written: the GGUF's rope_freqs.weight (llama.cpp's Llama-3 RoPE factors) has no "
                      "exact config.json form");
    return;
  }
  const RopeScaling rs = read_rope_scaling_gguf(in, arch, num("context_length"));
  if (rs.type != RopeType::none) {
    nlohmann::ordered_json r = {{"rope_type", rope_type_name(rs.type)}, {"factor", rs.factor}};
    if (rs.type == RopeType::yarn) {
      r["original_max_position_embeddings"] = rs.original_context;
      r["attention_factor"] = *rs.attention_factor;
      r["beta_fast"] = rs.beta_fast;
      r["beta_slow"] = rs.beta_slow;
      r["truncate"] = rs.truncate;
    }
    c["rope_scaling"] = r;
  }
  c["tie_word_embeddings"] = in.find_tensor("output.weight") == nullptr;
  if (const GgufValue* v = in.find("tokenizer.ggml.bos_token_id"); v && v->as_int()) c["bos_token_id"] = *v->as_int();
  if (const GgufValue* v = in.find("tokenizer.ggml.eos_token_id"); v && v->as_int()) c["eos_token_id"] = *v->as_int();
  c["quantization_config"] = {{"quant_method", "bitnet"}, {"linear_class", "autobitlinear"},
                              {"quantization_mode", "offline"}};
  std::ofstream f(path);
  f << c.dump(2) << "\n";
  if (!f) fail("[convert] cannot write {}", path.string());
  s.notes.push_back(fmt::format("wrote {}", path.string()));
}

void gguf_to_safetensors(const GgufFile& in, const std::string& output, const ConvertOptions& o, ConvertSummary& s) {
  struct Out {
    std::string name;
    StDType dtype;
    std::vector<int64_t> shape;
    std::function<std::vector<uint8_t>()> produce;
    std::string source;  // GGUF tensor name
  };
  std::vector<Out> outs;
  for (const auto& t : in.tensors()) {
    const std::string what = fmt::format("{}: tensor '{}'", in.path(), t.name);
    std::string name = gguf_to_hf_name(t.name).value_or(t.name);
    const auto shape = t.torch_shape();
    if (auto f = ternary_format_of(t.type)) {
      if (t.dims.size() != 2) fail("{}: ternary tensor with {} dims; expected 2", what, t.dims.size());
      const int64_t rows = t.dims[1], cols = t.dims[0];
      if (rows % 4 != 0) fail("{}: {} output rows; HF packing needs a multiple of 4", what, rows);
      ++s.ternary_tensors;
      // Decode once here for the scale (the header needs its dtype), again when writing the weight.
      const TernaryTensor probe = unpack_ternary(*f, u8span(in.tensor_data(t)), rows, cols);
      const float scale = probe.scale;
      release_pages(in.tensor_data(t));
      const bool bf16_exact = bf16_to_f32(f32_to_bf16(scale)) == scale;
      const std::string arch = in.architecture();
      const int64_t heads = in.get_int(arch + ".attention.head_count");
      const int64_t permute_heads = llama_rope_permuted_heads(
          arch, t.name, heads,
          in.find(arch + ".attention.head_count_kv") ? in.get_int(arch + ".attention.head_count_kv") : heads);
      outs.push_back({name, StDType::u8, {rows / 4, cols}, [&in, &t, f, rows, cols, permute_heads]() {
        TernaryTensor tt = unpack_ternary(*f, u8span(in.tensor_data(t)), rows, cols);
        if (permute_heads > 0) tt.values = permute_llama_rope_rows(tt.values, rows, cols, permute_heads, false);
        return pack_ternary(TernaryFormat::hf_u8, tt.values, rows, cols, 0);
      }, t.name});
      const std::string scale_name = name.substr(0, name.size() - 6) + "weight_scale";
      outs.push_back({scale_name, bf16_exact ? StDType::bf16 : StDType::f32, {1}, [scale, bf16_exact]() {
        return from_f32({scale}, bf16_exact ? GgmlType::bf16 : GgmlType::f32);
      }, ""});
      continue;
    }
    StDType dt;
    switch (t.type) {
      case GgmlType::f32: dt = StDType::f32; break;
      case GgmlType::f16: dt = StDType::f16; break;
      case GgmlType::bf16: dt = StDType::bf16; break;
      case GgmlType::i8: dt = StDType::i8; break;
      case GgmlType::i32: dt = StDType::i32; break;
      default: fail("{} has type {}, which has no safetensors dtype", what, ggml_type_name(t.type));
    }
    outs.push_back({name, dt, shape, nullptr, t.name});  // written straight from the mapping
  }
  // Shards: consecutive tensors up to max_shard_bytes each (a tensor larger than that gets a shard of its own),
  // named like transformers does, with model.safetensors.index.json beside them.
  std::vector<size_t> shard_of(outs.size(), 0);
  size_t n_shards = 1;
  if (o.max_shard_bytes > 0) {
    uint64_t in_shard = 0;
    for (size_t i = 0; i < outs.size(); ++i) {
      uint64_t bytes = st_dtype_size(outs[i].dtype);
      for (int64_t d : outs[i].shape) bytes *= static_cast<uint64_t>(d);
      if (in_shard > 0 && in_shard + bytes > o.max_shard_bytes) {
        ++n_shards;
        in_shard = 0;
      }
      shard_of[i] = n_shards - 1;
      in_shard += bytes;
    }
  }
  const fs::path out_path(output);
  const std::string stem = out_path.stem().string();
  auto shard_path = [&](size_t k) {
    return n_shards == 1 ? output
                         : (out_path.parent_path() / fmt::format("{}-{:05}-of-{:05}.safetensors", stem, k + 1, n_shards)).string();
  };
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  size_t next = 0;
  for (size_t k = 0; k < n_shards; ++k) {
    SafetensorsWriter w;
    w.set_metadata("format", "pt");
    w.set_metadata("bitnet.scale_convention", "multiply");
    size_t end = next;
    while (end < outs.size() && shard_of[end] == k) ++end;
    for (size_t i = next; i < end; ++i) {
      w.add_tensor(outs[i].name, outs[i].dtype, outs[i].shape);
      weight_map[outs[i].name] = fs::path(shard_path(k)).filename().string();
    }
    w.write_header(shard_path(k));
    for (size_t i = next; i < end; ++i) {
      if (o.progress) o.progress(i, outs.size(), outs[i].name);
      const GgufTensorInfo* src = outs[i].source.empty() ? nullptr : in.find_tensor(outs[i].source);
      if (!outs[i].produce) {
        w.write(in.tensor_data(*src));
        s.output_bytes += src->nbytes;
      } else {
        const auto bytes = outs[i].produce();
        s.output_bytes += bytes.size();
        w.write(std::as_bytes(std::span<const uint8_t>(bytes)));
      }
      if (src) release_pages(in.tensor_data(*src));
    }
    w.finish();
    next = end;
  }
  if (n_shards > 1) {
    const fs::path index = out_path.parent_path() / (out_path.filename().string() + ".index.json");
    nlohmann::ordered_json j;
    j["metadata"] = {{"total_size", s.output_bytes}};
    j["weight_map"] = weight_map;
    std::ofstream f(index);
    f << j.dump(2) << "\n";
    if (!f) fail("[convert] cannot write {}", index.string());
    s.notes.push_back(fmt::format("wrote {} shards and {}", n_shards, index.string()));
  }
  if (o.progress) o.progress(outs.size(), outs.size(), "");
  s.tensors = outs.size();
  s.notes.push_back("weight_scale written as mean|W| (multiply convention: quantization_config.linear_class = "
                    "\"autobitlinear\"); the tokenizer is not written");
  write_config_json(in, output, s);
}

void convert_checkpoint(const std::string& input, const std::string& dir, const ModelConfig& cfg,
                        const CheckpointTensors& tensors, const std::string& output, const ConvertOptions& o,
                        ConvertSummary& s) {
  const GgmlType tt = o.ternary_type;
  std::vector<Item> items;
  plan_checkpoint(input, tensors, cfg, o, s, items);
  const std::string arch = arch_for(cfg);
  std::vector<std::pair<std::string, GgufValue>> kv;
  kv.emplace_back("general.architecture", GgufValue::string(arch));
  kv.emplace_back("general.name", GgufValue::string(fs::absolute(fs::path(dir)).filename().string()));
  kv.emplace_back("general.file_type", GgufValue::u32(file_type_for(tt)));
  kv.emplace_back("general.quantization_version", GgufValue::u32(2));
  auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  kv.emplace_back(arch + ".vocab_size", u32(cfg.vocab_size));
  kv.emplace_back(arch + ".context_length", u32(cfg.max_position_embeddings));
  kv.emplace_back(arch + ".embedding_length", u32(cfg.hidden_size));
  kv.emplace_back(arch + ".block_count", u32(cfg.num_hidden_layers));
  kv.emplace_back(arch + ".feed_forward_length", u32(cfg.intermediate_size));
  kv.emplace_back(arch + ".attention.head_count", u32(cfg.num_attention_heads));
  kv.emplace_back(arch + ".attention.head_count_kv", u32(cfg.num_key_value_heads));
  kv.emplace_back(arch + ".attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(cfg.rms_norm_eps)));
  kv.emplace_back(arch + ".rope.dimension_count", u32(cfg.head_dim));
  kv.emplace_back(arch + ".rope.freq_base", GgufValue::f32(static_cast<float>(cfg.rope_theta)));
  if (cfg.head_dim * cfg.num_attention_heads != cfg.hidden_size) {
    kv.emplace_back(arch + ".attention.key_length", u32(cfg.head_dim));
    kv.emplace_back(arch + ".attention.value_length", u32(cfg.head_dim));
  }
  for (auto& e : rope_scaling_gguf_keys(arch, cfg.rope_scaling)) kv.push_back(std::move(e));
  if (cfg.rope_scaling.type == RopeType::llama3) {
    // llama.cpp's form of Llama-3 scaling: per-frequency divisors in rope_freqs.weight.
    const auto factors = llama3_rope_factors(cfg.rope_scaling, static_cast<float>(cfg.rope_theta), cfg.head_dim);
    items.push_back({"rope_freqs.weight", {static_cast<int64_t>(factors.size())}, GgmlType::f32,
                     [factors] { return from_f32(factors, GgmlType::f32); }, {}});
    s.notes.push_back("RoPE: " + cfg.rope_scaling.describe() + ", written as rope_freqs.weight");
  } else if (cfg.rope_scaling.type != RopeType::none) {
    s.notes.push_back("RoPE: " + cfg.rope_scaling.describe());
  }
  for (const auto& w : cfg.warnings) s.notes.push_back(w);
  if (cfg.quantization && !o.scale_convention)
    s.notes.push_back(fmt::format("weight_scale convention: {} (from quantization_config.linear_class = \"{}\")",
                                  scale_convention_name(cfg.quantization->scale_convention()),
                                  cfg.quantization->linear_class));
  for (auto& e : hf_tokenizer_to_gguf(dir, cfg, &s.notes)) kv.push_back(std::move(e));
  write_gguf(output, std::move(kv), items, o, s);
}

bool is_gguf_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  const auto f = MappedFile::open(path);
  return f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0;
}
}  // namespace convert_detail

using namespace convert_detail;

namespace {
ConvertSummary convert_model_to(const std::string& input, const std::string& output, const std::string& final_output,
                                const ConvertOptions& o);
}  // namespace

ConvertSummary convert_model(const std::string& input, const std::string& output, const ConvertOptions& o) {
  const GgmlType tt = o.ternary_type;
  if (!ternary_format_of(tt) && tt != GgmlType::f16 && tt != GgmlType::f32)
    fail("[convert] output type {} is not one of tq1_0, tq2_0, i2_s, f16, f32", ggml_type_name(tt));
  if (o.float_type && *o.float_type != GgmlType::f16 && *o.float_type != GgmlType::bf16 && *o.float_type != GgmlType::f32)
    fail("[convert] float type {} is not one of f16, bf16, f32", ggml_type_name(*o.float_type));
  std::error_code eq;
  if (fs::path(output) == fs::path(input) || (fs::exists(output, eq) && fs::equivalent(input, output, eq)))
    fail("[convert] output '{}' would overwrite the input", output);
  const bool to_st = output.ends_with(".safetensors");
  if (!to_st && !output.ends_with(".gguf")) fail("[convert] output '{}' must end in .gguf or .safetensors", output);
  (void)resolve_model_path(input);  // a missing path, a FIFO, a directory without config.json: named as such
  // A GGUF is written under a temporary name and renamed when complete: a failed or interrupted conversion never
  // leaves a half-written file, nor destroys a file the user had under the output's name.
  if (!to_st) {
    const std::string partial = output + ".partial";
    ConvertSummary s;
    try {
      s = convert_model_to(input, partial, output, o);
    } catch (...) {
      std::error_code ec;
      fs::remove(partial, ec);
      throw;
    }
    std::error_code ec;
    fs::rename(partial, output, ec);
    if (ec) {
      fs::remove(partial, ec);
      fail("[convert] cannot move '{}' into place as '{}'", partial, output);
    }
    return s;
  }
  return convert_model_to(input, output, output, o);
}

namespace {
// `output` is where bytes go; `final_output` the name the user gave (for messages and the input-overlap check).
ConvertSummary convert_model_to(const std::string& input, const std::string& output, const std::string& final_output,
                                const ConvertOptions& o) {
  ConvertSummary s;
  const GgmlType tt = o.ternary_type;
  const bool to_st = final_output.ends_with(".safetensors");
  try {
    if (resolve_model_path(input).kind == ModelPath::Kind::onnx) {
      if (to_st) fail("[convert] {}: only a GGUF input can be converted to safetensors", input);
      convert_onnx(input, output, o, s);
      return s;
    }
    if (is_gguf_file(input)) {
      const GgufFile in = GgufFile::open(input);
      if (!in.detection_note().empty()) s.notes.push_back(in.detection_note());
      if (to_st) {
        gguf_to_safetensors(in, output, o, s);
        return s;
      }
      std::vector<Item> items;
      plan_from_gguf(in, o, s, items);
      std::vector<std::pair<std::string, GgufValue>> kv;
      for (const auto& [k, v] : in.metadata())
        if (k != "general.alignment" && k != "general.file_type") kv.emplace_back(k, v);
      kv.emplace_back("general.file_type", GgufValue::u32(file_type_for(tt)));
      write_gguf(output, std::move(kv), items, o, s);
      return s;
    }
    if (to_st) fail("[convert] {}: only a GGUF input can be converted to safetensors", input);
    std::error_code ec;
    const fs::path dir = fs::is_directory(input, ec) ? fs::path(input) : fs::path(input).parent_path();
    const ModelConfig cfg = load_model_config((dir / "config.json").string());
    // Quantization follows the checkpoint, as when running it (Model::load_hf).
    if (!cfg.is_bitnet_checkpoint() && !o.quantize)
      fail("[convert] {}: config.json has no quantization_config: a full-precision checkpoint. Pass --quantize to "
           "ternarize its projections with absmean (BitNet b1.58 arithmetic, which changes its outputs)", input);
    const SafetensorsModel m = SafetensorsModel::open(input);
    if (fs::exists(dir / "pytorch_model.bin", ec) && m.names().empty())
      fail("[convert] {}: only safetensors are read (pickle files can run code)", input);
    convert_checkpoint(input, dir.string(), cfg, SafetensorsTensors(m), output, o, s);
    return s;
  } catch (...) {
    std::error_code ec;
    fs::remove(output, ec);  // never leave a half-written model behind
    throw;
  }
}

}  // namespace

}  // namespace bitnet
