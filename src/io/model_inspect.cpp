// `bitnet inspect`: what is in a model file, and what is wrong with it. The checks exist because real
// checkpoints have shipped broken: the 2B4T re-upload with all-zero FFN tensors (microsoft/BitNet #608), and
// non-ternary or NaN scales that make a model print garbage without any error.
#include <bitnet/dtype.h>
#include <bitnet/error.h>
#include <bitnet/model_files.h>
#include <bitnet/safetensors.h>
#include <bitnet/ternary_formats.h>

#include <cmath>
#include <cstring>
#include <filesystem>

namespace bitnet {

namespace {
using nlohmann::json;
namespace fs = std::filesystem;

struct FloatScan {
  int64_t nonfinite = 0;
  bool all_zero = true;
};

FloatScan scan_floats(std::span<const std::byte> d, std::string_view dtype) {
  FloatScan s;
  const size_t size = dtype == "F32" ? 4 : 2;
  for (size_t i = 0; i + size <= d.size(); i += size) {
    float v;
    if (size == 4) {
      std::memcpy(&v, d.data() + i, 4);
    } else {
      uint16_t b;
      std::memcpy(&b, d.data() + i, 2);
      v = dtype == "F16" ? f16_to_f32(b) : bf16_to_f32(b);
    }
    if (!std::isfinite(v)) ++s.nonfinite;
    if (v != 0.0f) s.all_zero = false;
  }
  return s;
}

bool bytes_all_zero(std::span<const std::byte> d) {
  for (std::byte b : d)
    if (b != std::byte{0}) return false;
  return true;
}

std::span<const uint8_t> u8span(std::span<const std::byte> s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

json value_json(const GgufValue& v) {
  if (v.type == GgufValueType::string) return v.str;
  if (v.type == GgufValueType::boolean) return v.bits != 0;
  // An f32 is shown by its shortest decimal form (1e-05, not 9.999999747378752e-06).
  if (v.is_float() && !std::isfinite(*v.as_float())) return fmt::format("{}", *v.as_float());  // JSON has no NaN
  if (v.type == GgufValueType::f32) return json::parse(fmt::format("{}", static_cast<float>(*v.as_float())));
  if (v.is_float()) return *v.as_float();
  if (v.type != GgufValueType::array) {
    if (auto i = v.as_int()) return *i;
    return *v.as_uint();
  }
  json a = {{"array", gguf_value_type_name(v.elem_type)}, {"count", v.count}};
  json first = json::array();
  for (uint64_t i = 0; i < std::min<uint64_t>(v.count, 8); ++i) {
    if (v.elem_type == GgufValueType::string) first.push_back(v.strings[i]);
    else if (v.elem_type == GgufValueType::array) first.push_back(value_json(v.arrays[i]));
    else if (v.elem_type == GgufValueType::f32 || v.elem_type == GgufValueType::f64) first.push_back(*v.float_at(i));
    else if (auto x = v.int_at(i)) first.push_back(*x);
  }
  a["first"] = first;
  return a;
}

// Adds the ternary checks of a decoded layout to the tensor's entry and the problem list.
void ternary_checks(const TernaryReport& r, const std::string& name, json& entry, json& problems, bool has_scale) {
  entry["checks"] = {{"zeros", r.zeros},
                     {"invalid_codes", r.invalid_codes},
                     {"nonfinite_scales", r.nonfinite_scales},
                     {"distinct_scales", r.distinct_scales},
                     {"scale", r.scale}};
  if (r.zeros == r.numel) problems.push_back(fmt::format("{}: all values are zero", name));
  if (r.invalid_codes) problems.push_back(fmt::format("{}: {} codes are not ternary (code 3)", name, r.invalid_codes));
  if (r.nonfinite_scales) problems.push_back(fmt::format("{}: {} scales are NaN or Inf", name, r.nonfinite_scales));
  if (has_scale && r.zeros != r.numel && r.scale == 0.0f) problems.push_back(fmt::format("{}: scale is zero", name));
}

void float_checks(std::span<const std::byte> d, std::string_view dtype, const std::string& name, json& entry,
                  json& problems, bool is_scale) {
  const FloatScan s = scan_floats(d, dtype);
  entry["checks"] = {{"all_zero", s.all_zero}, {"nonfinite", s.nonfinite}};
  if (s.nonfinite) problems.push_back(fmt::format("{}: {} values are NaN or Inf", name, s.nonfinite));
  if (s.all_zero && !d.empty()) problems.push_back(fmt::format("{}: all values are zero{}", name, is_scale ? " (a zero scale)" : ""));
}

// Tokenizer arrays are read as typed arrays by every consumer: a wrong element type or a count that disagrees
// with the vocabulary is what turned into out-of-bounds reads in llama.cpp (PR #26690).
void tokenizer_checks(const GgufFile& f, json& problems) {
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  if (!tokens) return;
  if (tokens->type != GgufValueType::array || tokens->elem_type != GgufValueType::string) {
    problems.push_back("tokenizer.ggml.tokens: expected an array of strings");
    return;
  }
  const uint64_t n = tokens->count;
  const std::pair<const char*, GgufValueType> arrays[] = {{"tokenizer.ggml.scores", GgufValueType::f32},
                                                          {"tokenizer.ggml.token_type", GgufValueType::i32}};
  for (const auto& [key, elem] : arrays) {
    const GgufValue* v = f.find(key);
    if (!v) continue;
    if (v->type != GgufValueType::array || v->elem_type != elem)
      problems.push_back(fmt::format("{}: expected an array of {}", key, gguf_value_type_name(elem)));
    else if (v->count != n)
      problems.push_back(fmt::format("{}: {} entries for {} tokens", key, v->count, n));
  }
  if (const GgufValue* m = f.find("tokenizer.ggml.merges");
      m && (m->type != GgufValueType::array || m->elem_type != GgufValueType::string))
    problems.push_back("tokenizer.ggml.merges: expected an array of strings");
  if (const GgufValue* v = f.find(f.architecture() + ".vocab_size"); v && v->as_uint() != n)
    problems.push_back(fmt::format("{}.vocab_size is {} but there are {} tokens", f.architecture(), v->to_string(), n));
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"})
    if (const GgufValue* v = f.find(key)) {
      const auto id = v->as_uint();
      if (!id || *id >= n) problems.push_back(fmt::format("{} = {} is not a token id below {}", key, v->to_string(), n));
    }
}

json inspect_gguf(const std::string& path) {
  const GgufFile f = GgufFile::open(path);
  json out = {{"format", "gguf"}, {"path", path}, {"version", f.version()}, {"alignment", f.alignment()},
              {"file_bytes", f.file_size()}};
  if (!f.detection_note().empty()) out["detected"] = f.detection_note();
  json meta = json::object();
  for (const auto& [k, v] : f.metadata()) meta[k] = {{"type", gguf_value_type_name(v.type)}, {"value", value_json(v)}};
  out["metadata"] = meta;
  json tensors = json::array(), problems = json::array();
  for (const auto& t : f.tensors()) {
    json e = {{"name", t.name}, {"type", ggml_type_name(t.type)}, {"shape", t.torch_shape()}, {"bytes", t.nbytes}};
    const auto d = f.tensor_data(t);
    std::optional<TernaryFormat> tf;
    if (t.type == GgmlType::tq1_0) tf = TernaryFormat::tq1_0;
    if (t.type == GgmlType::tq2_0) tf = TernaryFormat::tq2_0;
    if (t.type == GgmlType::i2_s) tf = TernaryFormat::i2_s;
    if (tf) {
      const int64_t cols = t.dims[0], rows = t.numel() / cols;
      ternary_checks(inspect_ternary(*tf, u8span(d), rows, cols), t.name, e, problems, true);
    } else if (t.type == GgmlType::f32 || t.type == GgmlType::f16 || t.type == GgmlType::bf16) {
      float_checks(d, t.type == GgmlType::f32 ? "F32" : t.type == GgmlType::f16 ? "F16" : "BF16", t.name, e, problems,
                   t.name.ends_with(".scale") || t.name.ends_with("_scale"));
    } else {
      const bool z = bytes_all_zero(d);
      e["checks"] = {{"all_zero", z}};
      if (z) problems.push_back(fmt::format("{}: all bytes are zero", t.name));
    }
    tensors.push_back(e);
  }
  tokenizer_checks(f, problems);
  out["tensors"] = tensors;
  out["problems"] = problems;
  return out;
}

json inspect_safetensors(const std::string& path) {
  const SafetensorsModel m = SafetensorsModel::open(path);
  json out = {{"format", "safetensors"}, {"path", m.source()}, {"shards", m.shards().size()}};
  json meta = json::object();
  for (const auto& s : m.shards())
    for (const auto& [k, v] : s->metadata()) meta[k] = v;
  out["metadata"] = meta;
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  if (fs::exists(dir / "config.json", ec)) {
    const ModelConfig c = load_model_config((dir / "config.json").string());
    out["config"] = {{"architectures", c.architectures}, {"hidden_size", c.hidden_size},
                     {"num_hidden_layers", c.num_hidden_layers}, {"vocab_size", c.vocab_size}};
    if (c.quantization)
      out["config"]["weight_scale_convention"] = scale_convention_name(c.quantization->scale_convention());
  }
  json tensors = json::array(), problems = json::array();
  for (const auto& name : m.names()) {
    const auto& e = m.tensor(name);
    const StTensorInfo& t = *e.info;
    const std::string dtype(st_dtype_name(t.dtype));
    json j = {{"name", name}, {"type", dtype}, {"shape", t.shape}, {"bytes", t.nbytes()}};
    const auto d = m.data(e);
    const std::string scale_name = name.ends_with(".weight") ? name.substr(0, name.size() - 6) + "weight_scale" : "";
    if (t.dtype == StDType::u8 && t.shape.size() == 2 && !scale_name.empty() && m.find(scale_name) && t.numel() > 0) {
      j["layout"] = "HF packed ternary";
      ternary_checks(inspect_ternary(TernaryFormat::hf_u8, u8span(d), t.shape[0] * 4, t.shape[1]), name, j, problems,
                     false);  // its weight_scale is a tensor of its own, checked below
    } else if (t.dtype == StDType::f32 || t.dtype == StDType::f16 || t.dtype == StDType::bf16) {
      float_checks(d, dtype, name, j, problems, name.ends_with("weight_scale"));
    } else {
      const bool z = bytes_all_zero(d) && !d.empty();
      j["checks"] = {{"all_zero", z}};
      if (z) problems.push_back(fmt::format("{}: all bytes are zero", name));
    }
    tensors.push_back(j);
  }
  out["tensors"] = tensors;
  out["problems"] = problems;
  return out;
}
}  // namespace

json inspect_model(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    const auto f = MappedFile::open(path);
    if (f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0) return inspect_gguf(path);
    if (!path.ends_with(".safetensors") && !path.ends_with(".json"))
      fail("{}: neither a GGUF file (magic 'GGUF') nor a .safetensors / index .json file", path);
  }
  return inspect_safetensors(path);
}

}  // namespace bitnet
