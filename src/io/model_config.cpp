// config.json / generation_config.json -> typed structs. Keys absent from the file take the transformers class
// defaults; keys present with the wrong JSON type or an impossible value are errors naming the file and key.
#include <bitnet/error.h>
#include <bitnet/model_config.h>

#include <algorithm>
#include <filesystem>

#include "io/json_util.h"

namespace bitnet {

using nlohmann::json;

std::string_view scale_convention_name(ScaleConvention c) {
  return c == ScaleConvention::multiply ? "multiply (weight_scale = mean|W|)" : "divide (weight_scale = 1/mean|W|)";
}

bool ModelConfig::is_bitnet_checkpoint() const {
  return quantization.has_value() ||
         std::find(architectures.begin(), architectures.end(), "BitnetForCausalLM") != architectures.end();
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

// transformers reads these files with Python's json, where a repeated key keeps its last value (a published
// config, HF1BitLLM/Llama3-8B-1.58, carries quantization_config twice): the same here, with a warning.
json parse_object(std::string_view text, std::string_view src, std::vector<std::string>* warnings = nullptr) {
  std::vector<std::string> duplicates;
  json j = io::parse_json_strict(text, src, 32, warnings ? &duplicates : nullptr);
  for (const auto& key : duplicates)
      warnings->push_back(fmt::format("{}: key \"{}\" appears more than once; the last one is used, as Python's json "
                                      "(and so transformers) does", src, key));
  if (!j.is_object()) fail("{}: top level is JSON {}; expected an object", src, io::json_type_name(j));
  return j;
}
}  // namespace

namespace {

// Keys that do not change what a forward pass computes at inference (bookkeeping, training-only settings,
// tokens handled elsewhere). Anything else that this reader does not handle becomes a warning.
constexpr std::string_view kInertKeys[] = {
    "_name_or_path", "transformers_version", "use_cache", "initializer_range", "attention_dropout", "pretraining_tp",
    "auto_map", "dtype", "output_attentions", "output_hidden_states", "return_dict", "is_decoder",
    "is_encoder_decoder", "add_cross_attention", "tie_encoder_decoder", "torchscript", "pruned_heads",
    "chunk_size_feed_forward", "problem_type", "id2label", "label2id", "task_specific_params", "finetuning_task",
    "prefix", "sep_token_id", "decoder_start_token_id", "tokenizer_class", "use_bfloat16", "tf_legacy_loss",
    "cross_attention_hidden_size", "bad_words_ids", "begin_suppress_tokens", "suppress_tokens", "max_length",
    "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature",
    "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "num_return_sequences", "output_scores", "return_dict_in_generate",
    "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
    "output_router_logits", "model_max_length", "architectures", "model_type",
    // 1bitLLM's BitnetConfig: the bit widths of its BitLinear (1.58-bit weights, 8-bit activations: what the
    // engine computes) are checked below.
    "weight_bits", "input_bits"};

// Keys whose non-default value the engine does not implement: name, the value that is fine, why it matters.
struct Unsupported {
  std::string_view key;
  std::string_view ok;  // JSON of the harmless value(s), for the message
  bool (*harmless)(const nlohmann::json&);
};
constexpr Unsupported kUnsupported[] = {
    {"attention_bias", "false", [](const json& v) { return v.is_boolean() && !v.get<bool>(); }},
    {"mlp_bias", "false", [](const json& v) { return v.is_boolean() && !v.get<bool>(); }},
    {"partial_rotary_factor", "1.0", [](const json& v) { return v.is_number() && v.get<double>() == 1.0; }},
    {"sliding_window", "null", [](const json& v) { return v.is_null(); }},
    {"use_sliding_window", "false", [](const json& v) { return v.is_boolean() && !v.get<bool>(); }},
    {"attn_logit_softcapping", "null", [](const json& v) { return v.is_null(); }},
    {"final_logit_softcapping", "null", [](const json& v) { return v.is_null(); }},
    {"logits_scaling", "1", [](const json& v) { return v.is_number() && v.get<double>() == 1.0; }},
    {"embedding_multiplier", "1", [](const json& v) { return v.is_number() && v.get<double>() == 1.0; }},
    {"residual_multiplier", "1", [](const json& v) { return v.is_number() && v.get<double>() == 1.0; }},
    {"attention_multiplier", "null", [](const json& v) { return v.is_null(); }},
    {"layer_types", "null", [](const json& v) { return v.is_null(); }},
};

// rope_scaling (transformers 4.x) or rope_parameters (5.x): the type and its parameters. `where` names the key.
RopeScaling parse_rope(const json& r, std::string_view src, std::string_view where, double& theta, bool& theta_set) {
  if (!r.is_object()) fail("{}: \"{}\" is {}; expected an object", src, where, io::json_type_name(r));
  const Fields f{r, src};
  RopeScaling s;
  std::string type = "default";
  if (f.get("rope_type") && f.get("type") && f.get("rope_type")->dump() != f.get("type")->dump())
    fail("{}: {}.rope_type and {}.type disagree ({} vs {})", src, where, where, f.get("rope_type")->dump(),
         f.get("type")->dump());
  f.string(f.get("rope_type") ? "rope_type" : "type", type);
  const auto t = parse_rope_type(type);
  if (!t)
    fail("{}: {}.rope_type is \"{}\", which this engine does not compute (supported: {})", src, where, type,
         rope_type_list());
  s.type = *t;
  if (f.get("rope_theta")) {
    double th = 0;
    f.number("rope_theta", th, 1e-6, 1e12);
    if (theta_set && th != theta)
      fail("{}: rope_theta is {} at the top level but {} in {}", src, theta, th, where);
    theta = th;
    theta_set = true;
  }
  if (const json* p = f.get("partial_rotary_factor"); p && !(p->is_number() && p->get<double>() == 1.0))
    fail("{}: {}.partial_rotary_factor = {} is not supported (the engine rotates whole heads)", src, where, p->dump());
  const bool scaled = s.type != RopeType::none;
  if (scaled && !f.get("factor") && s.type != RopeType::yarn)
    fail("{}: {}.factor is missing for rope_type \"{}\"", src, where, type);
  f.number("factor", s.factor, 1e-6, 1e6);
  std::optional<int64_t> original;
  f.integer("original_max_position_embeddings", original, 1, int64_t(1) << 31);
  if (original) s.original_context = *original;
  std::vector<std::string_view> known = {"rope_type", "type", "rope_theta", "partial_rotary_factor", "factor",
                                         "original_max_position_embeddings"};
  if (s.type == RopeType::llama3) {
    for (const char* k : {"low_freq_factor", "high_freq_factor"})
      if (!f.get(k)) fail("{}: {}.{} is missing for rope_type \"llama3\"", src, where, k);
    f.number("low_freq_factor", s.low_freq_factor, 1e-6, 1e6);
    f.number("high_freq_factor", s.high_freq_factor, 1e-6, 1e6);
    if (s.low_freq_factor == s.high_freq_factor)
      fail("{}: {}.low_freq_factor and high_freq_factor are both {}", src, where, s.low_freq_factor);
    known.insert(known.end(), {"low_freq_factor", "high_freq_factor"});
  }
  if (s.type == RopeType::yarn) {
    std::optional<double> af, bf, bs, ms, msa;
    f.number("attention_factor", af, 0.0, 1e6);
    f.number("beta_fast", bf, 0.0, 1e6);
    f.number("beta_slow", bs, 0.0, 1e6);
    f.number("mscale", ms, 0.0, 1e6);
    f.number("mscale_all_dim", msa, 0.0, 1e6);
    s.attention_factor = af;
    // transformers: `get("beta_fast") or 32` (a 0 also falls back).
    if (bf && *bf != 0.0) s.beta_fast = *bf;
    if (bs && *bs != 0.0) s.beta_slow = *bs;
    s.mscale = ms.value_or(0.0);
    s.mscale_all_dim = msa.value_or(0.0);
    f.boolean("truncate", s.truncate);
    known.insert(known.end(), {"attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"});
  }
  for (const auto& [k, v] : r.items())
    if (std::find(known.begin(), known.end(), k) == known.end() && !v.is_null())
      fail("{}: {}.{} is not a parameter of rope_type \"{}\" that this engine computes", src, where, k, type);
  return s;
}

}  // namespace

ModelConfig parse_model_config(std::string_view text, std::string_view src) {
  ModelConfig c;
  const json j = parse_object(text, src, &c.warnings);
  const Fields f{j, src};
  if (const json* a = f.get("architectures")) {
    if (!a->is_array()) fail("{}: \"architectures\" is {}; expected a list of strings", src, io::json_type_name(*a));
    for (const auto& e : *a) {
      if (!e.is_string()) fail("{}: \"architectures\" holds {}; expected strings", src, io::json_type_name(e));
      c.architectures.push_back(e.get<std::string>());
    }
  }
  f.string("model_type", c.model_type);
  // The transformers class defaults of the model type (BitNetConfig / LlamaConfig).
  if (c.model_type == "bitnet") {
    c.rope_theta = 500000.0;
    c.rms_norm_eps = 1e-5;
    c.hidden_act = "relu2";
  }
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
  bool theta_set = f.get("rope_theta") != nullptr;
  f.number("rope_theta", c.rope_theta, 1e-6, 1e12);
  // transformers 5 reads rope_scaling first, then rope_parameters; a file with both must not disagree.
  const json* rs = f.get("rope_scaling");
  const json* rp = f.get("rope_parameters");
  if (rs && rp && rs->dump() != rp->dump()) {
    json a = *rs, b = *rp;  // 5.x copies rope_theta into rope_parameters: compare without it
    a.erase("rope_theta");
    b.erase("rope_theta");
    if (a != b) fail("{}: \"rope_scaling\" and \"rope_parameters\" disagree ({} vs {})", src, rs->dump(), rp->dump());
  }
  if (rp) c.rope_scaling = parse_rope(*rp, src, "rope_parameters", c.rope_theta, theta_set);
  if (rs) c.rope_scaling = parse_rope(*rs, src, "rope_scaling", c.rope_theta, theta_set);
  f.boolean("tie_word_embeddings", c.tie_word_embeddings);
  f.boolean("attention_bias", c.attention_bias);
  f.integer("bos_token_id", c.bos_token_id, 0, INT32_MAX);
  f.id_list("eos_token_id", c.eos_token_ids);
  f.integer("pad_token_id", c.pad_token_id, 0, INT32_MAX);
  f.string("torch_dtype", c.torch_dtype);
  if (c.torch_dtype.empty() && f.get("dtype")) f.string("dtype", c.torch_dtype);

  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"})
    if (!f.get(key)) fail("{}: required key \"{}\" is missing", src, key);
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  if (c.head_dim == 0) {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail("{}: hidden_size {} is not divisible by num_attention_heads {}", src, c.hidden_size, c.num_attention_heads);
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) fail("{}: head_dim {} is odd; RoPE rotates pairs", src, c.head_dim);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", src, c.num_attention_heads,
         c.num_key_value_heads);
  if (c.intermediate_size == 0) fail("{}: required key \"intermediate_size\" is missing", src);
  if ((c.rope_scaling.type == RopeType::llama3 || c.rope_scaling.type == RopeType::yarn) &&
      c.rope_scaling.original_context == 0)
    c.rope_scaling.original_context = c.max_position_embeddings;  // transformers' standardize_rope_params
  auto check_id = [&](std::string_view key, int64_t id) {
    if (id >= c.vocab_size) fail("{}: \"{}\" = {} is not below vocab_size {}", src, key, id, c.vocab_size);
  };
  if (c.bos_token_id) check_id("bos_token_id", *c.bos_token_id);
  for (int64_t id : c.eos_token_ids) check_id("eos_token_id", id);
  if (c.pad_token_id) check_id("pad_token_id", *c.pad_token_id);
  for (const char* key : {"weight_bits", "input_bits"}) {
    std::optional<int64_t> bits;
    f.integer(key, bits, 1, 64);
    const int64_t expected = std::string_view(key) == "weight_bits" ? 1 : 8;  // 1bitLLM: "1" means ternary (1.58)
    if (bits && *bits != expected)
      fail("{}: \"{}\" = {}; the engine computes BitNet b1.58 (weight_bits 1, input_bits 8)", src, key, *bits);
  }

  if (const json* q = f.get("quantization_config")) {
    if (!q->is_object()) fail("{}: \"quantization_config\" is {}; expected an object", src, io::json_type_name(*q));
    const Fields qf{*q, src};
    QuantizationConfig qc;
    qf.string("quant_method", qc.quant_method);
    qf.string("linear_class", qc.linear_class);
    qf.string("quantization_mode", qc.quantization_mode);
    qf.boolean("use_rms_norm", qc.use_rms_norm);
    qf.number("rms_norm_eps", qc.rms_norm_eps, 0.0, 1.0);
    if (qc.quant_method != "bitnet")
      fail("{}: quantization_config.quant_method is \"{}\"; only \"bitnet\" (ternary) checkpoints run here", src,
           qc.quant_method);
    if (!qc.linear_class.empty() && qc.linear_class != "autobitlinear" && qc.linear_class != "bitlinear")
      fail("{}: quantization_config.linear_class is \"{}\"; expected \"autobitlinear\" or \"bitlinear\"", src,
           qc.linear_class);
    if (!qc.quantization_mode.empty() && qc.quantization_mode != "offline" && qc.quantization_mode != "online")
      fail("{}: quantization_config.quantization_mode is \"{}\"; expected \"offline\" or \"online\"", src,
           qc.quantization_mode);
    if (qc.use_rms_norm)
      fail("{}: quantization_config.use_rms_norm = true (an extra RMSNorm inside each BitLinear) is not supported", src);
    c.quantization = qc;
  }

  static constexpr std::string_view kHandled[] = {
      "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
      "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
      "rope_scaling", "rope_parameters", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id",
      "torch_dtype", "quantization_config"};
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    auto is = [&key](std::string_view k) { return k == key; };
    if (std::any_of(std::begin(kHandled), std::end(kHandled), is) ||
        std::any_of(std::begin(kInertKeys), std::end(kInertKeys), is))
      continue;
    const auto u = std::find_if(std::begin(kUnsupported), std::end(kUnsupported),
                                [&key](const Unsupported& x) { return x.key == key; });
    if (u != std::end(kUnsupported)) {
      if (!u->harmless(value))
        fail("{}: \"{}\" = {} is not supported by this engine (only {})", src, key, value.dump(), u->ok);
      continue;
    }
    c.warnings.push_back(fmt::format("{}: unknown key \"{}\" = {} is ignored; if it changes the model's computation "
                                     "the results will differ from transformers",
                                     src, key, value.dump().substr(0, 80)));
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
