// RoPE scaling <-> GGUF metadata (see rope_gguf.h).
#include <bitnet/error.h>
#include <bitnet/rope_gguf.h>

namespace bitnet {

std::vector<std::pair<std::string, GgufValue>> rope_scaling_gguf_keys(const std::string& arch, const RopeScaling& s) {
  std::vector<std::pair<std::string, GgufValue>> kv;
  const std::string p = arch + ".rope.scaling.";
  auto f32 = [](double v) { return GgufValue::f32(static_cast<float>(v)); };
  switch (s.type) {
    case RopeType::none:
    case RopeType::llama3:  // rope_freqs.weight, as llama.cpp's converter writes it
      break;
    case RopeType::linear:
    case RopeType::dynamic:
      kv.emplace_back(p + "type", GgufValue::string(std::string(rope_type_name(s.type))));
      kv.emplace_back(p + "factor", f32(s.factor));
      break;
    case RopeType::yarn: {
      kv.emplace_back(p + "type", GgufValue::string("yarn"));
      kv.emplace_back(p + "factor", f32(s.factor));
      kv.emplace_back(p + "original_context_length", GgufValue::u32(static_cast<uint32_t>(s.original_context)));
      // llama.cpp multiplies attn_factor by 1 + 0.1 ln(factor) itself: store what remains of the final factor.
      kv.emplace_back(p + "attn_factor", f32(yarn_attention_factor(s) / yarn_get_mscale(s.factor)));
      kv.emplace_back(p + "yarn_beta_fast", f32(s.beta_fast));
      kv.emplace_back(p + "yarn_beta_slow", f32(s.beta_slow));
      if (!s.truncate) kv.emplace_back(p + "yarn_truncate", GgufValue::boolean(false));  // ours; llama.cpp truncates
      break;
    }
  }
  return kv;
}

RopeScaling read_rope_scaling_gguf(const GgufFile& f, const std::string& arch, int64_t context) {
  const std::string p = arch + ".rope.scaling.";
  auto number = [&](const std::string& key) -> std::optional<double> {
    const GgufValue* v = f.find(key);
    if (v == nullptr) return std::nullopt;
    if (auto d = v->as_float()) return d;
    if (auto i = v->as_int()) return static_cast<double>(*i);
    fail("[model] '{}': {} is not a number", f.path(), key);
  };
  RopeScaling s;
  std::optional<double> factor = number(p + "factor");
  if (!factor) factor = number(arch + ".rope.scale_linear");  // llama.cpp's older key
  // llama.cpp: the type defaults to "linear"; a factor of 0 or 1 means no scaling.
  std::string type = "linear";
  if (f.find(p + "type")) type = f.get_string(p + "type");
  if (type == "none" || ((type == "linear") && (!factor || *factor == 0.0 || *factor == 1.0))) return s;
  if (type != "linear" && type != "yarn" && type != "dynamic")
    fail("[model] '{}': {}type = \"{}\" is not a RoPE scaling this engine computes (none, linear, yarn, dynamic)",
         f.path(), p, type);
  s.type = *parse_rope_type(type);
  if (!factor) fail("[model] '{}': {}type is \"{}\" but {}factor is missing", f.path(), p, type, p);
  s.factor = *factor;
  if (s.type == RopeType::yarn) {
    s.original_context = f.find(p + "original_context_length") ? f.get_int(p + "original_context_length") : context;
    s.beta_fast = number(p + "yarn_beta_fast").value_or(32.0);
    s.beta_slow = number(p + "yarn_beta_slow").value_or(1.0);
    s.attention_factor = number(p + "attn_factor").value_or(1.0) * yarn_get_mscale(s.factor);
    if (const GgufValue* t = f.find(p + "yarn_truncate")) {
      const auto b = t->as_int();
      BITNET_CHECK(b.has_value(), "[model] '{}': {}yarn_truncate is not a boolean", f.path(), p);
      s.truncate = *b != 0;
    }
  }
  (void)rope_frequencies(s, 10000.0, 2, context);  // parameter checks, naming the value
  return s;
}

}  // namespace bitnet
