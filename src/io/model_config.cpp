// config.json / generation_config.json -> typed structs. Keys absent from the file take the transformers class
// defaults; keys present with the wrong JSON type or an impossible value are errors naming the file and key.
#include <bitnet/error.h>
#include <bitnet/model_config.h>

#include <filesystem>

#include "io/json_util.h"

namespace bitnet {

using nlohmann::json;

std::string_view scale_convention_name(ScaleConvention c) {
  return c == ScaleConvention::multiply ? "multiply (weight_scale = mean|W|)" : "divide (weight_scale = 1/mean|W|)";
}

ScaleConvention QuantizationConfig::scale_convention() const {
  return linear_class == "autobitlinear" ? ScaleConvention::multiply : ScaleConvention::divide;
}

namespace {
struct Fields {
  const json& j;
  std::string_view src;

  const json* get(const char* key) const {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  void integer(const char* key, int64_t& out, int64_t min, int64_t max = INT64_MAX) const {
    if (const json* v = get(key)) out = as_int(*v, key, min, max);
  }
  void integer(const char* key, std::optional<int64_t>& out, int64_t min, int64_t max = INT64_MAX) const {
    if (const json* v = get(key)) out = as_int(*v, key, min, max);
  }
  int64_t as_int(const json& v, std::string_view key, int64_t min, int64_t max) const {
    if (!v.is_number_integer()) fail("{}: \"{}\" is {}; expected an integer", src, key, io::json_type_name(v));
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
      fail("{}: \"{}\" = {} is out of range [{}, {}]", src, key, v.dump(), min, max);
    const auto x = v.get<int64_t>();
    if (x < min || x > max) fail("{}: \"{}\" = {} is out of range [{}, {}]", src, key, x, min, max);
    return x;
  }
  void number(const char* key, double& out, double min, double max) const {
    if (const json* v = get(key)) out = as_number(*v, key, min, max);
  }
  void number(const char* key, std::optional<double>& out, double min, double max) const {
    if (const json* v = get(key)) out = as_number(*v, key, min, max);
  }
  double as_number(const json& v, std::string_view key, double min, double max) const {
    if (!v.is_number()) fail("{}: \"{}\" is {}; expected a number", src, key, io::json_type_name(v));
    const double x = v.get<double>();
    if (!(x >= min && x <= max)) fail("{}: \"{}\" = {} is out of range [{}, {}]", src, key, x, min, max);
    return x;
  }
  void boolean(const char* key, bool& out) const {
    if (const json* v = get(key)) {
      if (!v->is_boolean()) fail("{}: \"{}\" is {}; expected true or false", src, key, io::json_type_name(*v));
      out = v->get<bool>();
    }
  }
  void boolean(const char* key, std::optional<bool>& out) const {
    bool b = false;
    if (get(key)) {
      boolean(key, b);
      out = b;
    }
  }
  void string(const char* key, std::string& out) const {
    if (const json* v = get(key)) {
      if (!v->is_string()) fail("{}: \"{}\" is {}; expected a string", src, key, io::json_type_name(*v));
      out = v->get<std::string>();
    }
  }
  // eos_token_id: one integer or a list of them.
  void id_list(const char* key, std::vector<int64_t>& out) const {
    const json* v = get(key);
    if (!v) return;
    if (v->is_array()) {
      if (v->size() > 1024) fail("{}: \"{}\" lists {} ids; expected at most 1024", src, key, v->size());
      for (const auto& e : *v) out.push_back(as_int(e, key, 0, INT32_MAX));
    } else {
      out.push_back(as_int(*v, key, 0, INT32_MAX));
    }
  }
};

json parse_object(std::string_view text, std::string_view src) {
  json j = io::parse_json_strict(text, src, 32);
  if (!j.is_object()) fail("{}: top level is JSON {}; expected an object", src, io::json_type_name(j));
  return j;
}
}  // namespace

ModelConfig parse_model_config(std::string_view text, std::string_view src) {
  const json j = parse_object(text, src);
  const Fields f{j, src};
  ModelConfig c;
  if (const json* a = f.get("architectures")) {
    if (!a->is_array()) fail("{}: \"architectures\" is {}; expected a list of strings", src, io::json_type_name(*a));
    for (const auto& e : *a) {
      if (!e.is_string()) fail("{}: \"architectures\" holds {}; expected strings", src, io::json_type_name(e));
      c.architectures.push_back(e.get<std::string>());
    }
  }
  f.string("model_type", c.model_type);
  constexpr int64_t kBig = int64_t(1) << 31;  // no real dimension comes close; bounds products below
  f.integer("vocab_size", c.vocab_size, 1, kBig);
  f.integer("hidden_size", c.hidden_size, 1, kBig);
  f.integer("intermediate_size", c.intermediate_size, 1, kBig);
  f.integer("num_hidden_layers", c.num_hidden_layers, 1, 100000);
  f.integer("num_attention_heads", c.num_attention_heads, 1, 100000);
  f.integer("num_key_value_heads", c.num_key_value_heads, 1, 100000);
  f.integer("head_dim", c.head_dim, 1, kBig);
  f.string("hidden_act", c.hidden_act);
  f.integer("max_position_embeddings", c.max_position_embeddings, 1, kBig);
  f.number("rms_norm_eps", c.rms_norm_eps, 0.0, 1.0);
  f.number("rope_theta", c.rope_theta, 1e-6, 1e12);
  f.boolean("tie_word_embeddings", c.tie_word_embeddings);
  f.boolean("attention_bias", c.attention_bias);
  f.integer("bos_token_id", c.bos_token_id, 0, INT32_MAX);
  f.id_list("eos_token_id", c.eos_token_ids);
  f.integer("pad_token_id", c.pad_token_id, 0, INT32_MAX);
  f.string("torch_dtype", c.torch_dtype);

  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"})
    if (!f.get(key)) fail("{}: required key \"{}\" is missing", src, key);
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  if (c.head_dim == 0) {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail("{}: hidden_size {} is not divisible by num_attention_heads {}", src, c.hidden_size, c.num_attention_heads);
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", src, c.num_attention_heads,
         c.num_key_value_heads);
  if (c.intermediate_size == 0) fail("{}: required key \"intermediate_size\" is missing", src);
  auto check_id = [&](std::string_view key, int64_t id) {
    if (id >= c.vocab_size) fail("{}: \"{}\" = {} is not below vocab_size {}", src, key, id, c.vocab_size);
  };
  if (c.bos_token_id) check_id("bos_token_id", *c.bos_token_id);
  for (int64_t id : c.eos_token_ids) check_id("eos_token_id", id);
  if (c.pad_token_id) check_id("pad_token_id", *c.pad_token_id);

  if (const json* q = f.get("quantization_config")) {
    if (!q->is_object()) fail("{}: \"quantization_config\" is {}; expected an object", src, io::json_type_name(*q));
    const Fields qf{*q, src};
    QuantizationConfig qc;
    qf.string("quant_method", qc.quant_method);
    qf.string("linear_class", qc.linear_class);
    qf.string("quantization_mode", qc.quantization_mode);
    qf.boolean("use_rms_norm", qc.use_rms_norm);
    qf.number("rms_norm_eps", qc.rms_norm_eps, 0.0, 1.0);
    if (!qc.linear_class.empty() && qc.linear_class != "autobitlinear" && qc.linear_class != "bitlinear")
      fail("{}: quantization_config.linear_class is \"{}\"; expected \"autobitlinear\" or \"bitlinear\"", src,
           qc.linear_class);
    if (!qc.quantization_mode.empty() && qc.quantization_mode != "offline" && qc.quantization_mode != "online")
      fail("{}: quantization_config.quantization_mode is \"{}\"; expected \"offline\" or \"online\"", src,
           qc.quantization_mode);
    c.quantization = qc;
  }
  return c;
}

GenerationConfig parse_generation_config(std::string_view text, std::string_view src) {
  const json j = parse_object(text, src);
  const Fields f{j, src};
  GenerationConfig g;
  f.integer("bos_token_id", g.bos_token_id, 0, INT32_MAX);
  f.id_list("eos_token_id", g.eos_token_ids);
  f.integer("pad_token_id", g.pad_token_id, 0, INT32_MAX);
  f.boolean("do_sample", g.do_sample);
  f.number("temperature", g.temperature, 0.0, 1e6);
  f.number("top_p", g.top_p, 0.0, 1.0);
  f.integer("top_k", g.top_k, 0, INT32_MAX);
  f.integer("max_length", g.max_length, 1, INT32_MAX);
  f.integer("max_new_tokens", g.max_new_tokens, 1, INT32_MAX);
  f.number("repetition_penalty", g.repetition_penalty, 0.0, 1e6);
  return g;
}

ModelConfig load_model_config(const std::string& path) {
  std::filesystem::path p(path);
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) p /= "config.json";
  return parse_model_config(io::read_text_file(p.string(), 16 << 20), p.string());
}

GenerationConfig load_generation_config(const std::string& path) {
  return parse_generation_config(io::read_text_file(path, 16 << 20), path);
}

}  // namespace bitnet
