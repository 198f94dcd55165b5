// Tokenizer from a Hugging Face tokenizer.json (byte-level BPE: model.type "BPE" with a ByteLevel
// pre-tokenizer, optionally behind Split regexes), plus tokenizer_config.json beside it for bos/eos,
// add_bos_token and chat_template.
#include <bitnet/error.h>
#include <bitnet/tokenizer.h>

#include <filesystem>

#include "io/json_util.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

namespace bitnet {

namespace {

using nlohmann::json;

constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// PCRE2 literal for a Split whose pattern is {"String": ...}.
std::string quote_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

void add_pretokenizer(const json& p, const std::string& file, std::vector<std::string>& patterns) {
  if (!p.is_object() || !p.contains("type")) fail("{}: pre_tokenizer entries must be objects with a \"type\"", file);
  const std::string where = file + ": pre_tokenizer";
  const std::string type = io::string_field(p, "type", "", where);
  if (type == "Sequence") {
    if (!p.contains("pretokenizers") || !p["pretokenizers"].is_array())
      fail("{}: pre_tokenizer Sequence needs a \"pretokenizers\" list", file);
    for (const auto& q : p["pretokenizers"]) add_pretokenizer(q, file, patterns);
  } else if (type == "ByteLevel") {
    if (io::bool_field(p, "add_prefix_space", false, where))
      fail("{}: ByteLevel pre_tokenizer with add_prefix_space = true is not supported", file);
    if (io::bool_field(p, "use_regex", true, where)) patterns.push_back(kGpt2Pattern);
  } else if (type == "Split") {
    if (io::string_field(p, "behavior", "", where) != "Isolated" || io::bool_field(p, "invert", false, where))
      fail("{}: only Split pre_tokenizers with behavior \"Isolated\" and invert = false are supported, got {}", file,
           p.dump());
    const json& pat = p.contains("pattern") ? p["pattern"] : json();
    if (pat.contains("Regex") && pat["Regex"].is_string()) patterns.push_back(pat["Regex"].get<std::string>());
    else if (pat.contains("String") && pat["String"].is_string())
      patterns.push_back(quote_literal(pat["String"].get<std::string>()));
    else fail("{}: Split pre_tokenizer pattern must be {{\"Regex\": ...}} or {{\"String\": ...}}", file);
  } else if (type == "Digits") {
    patterns.push_back(io::bool_field(p, "individual_digits", false, where) ? R"(\p{N})" : R"(\p{N}+)");
  } else {
    fail("{}: pre_tokenizer type \"{}\" is not supported (supported: ByteLevel, Split, Digits, Sequence)", file,
         type);
  }
}

// A special-token field of tokenizer_config.json: "text" or {"content": "text", ...}.
std::optional<std::string> token_field(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return std::nullopt;
  const json& t = cfg[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
  return std::nullopt;
}

// TemplateProcessing's "single" starting with a special token: that token is the BOS it adds.
std::optional<std::string> template_bos(const json& pp, const std::string& where) {
  if (!pp.is_object()) return std::nullopt;
  const std::string type = io::string_field(pp, "type", "", where);
  if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
    for (const auto& q : pp["processors"])
      if (auto b = template_bos(q, where)) return b;
    return std::nullopt;
  }
  if (type != "TemplateProcessing" || !pp.contains("single") || !pp["single"].is_array() ||
      pp["single"].empty())
    return std::nullopt;
  const json& first = pp["single"][0];
  if (first.contains("SpecialToken") && first["SpecialToken"].contains("id") && first["SpecialToken"]["id"].is_string())
    return first["SpecialToken"]["id"].get<std::string>();
  return std::nullopt;
}

}  // namespace

namespace {

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path file = path;
  if (fs::is_directory(file, ec)) file /= "tokenizer.json";
  const std::string name = file.string();
  if (!fs::exists(file, ec)) fail("{}: no such file (expected a tokenizer.json or a directory holding one)", name);
  const json j = io::parse_json_strict(io::read_text_file(name, 256ull << 20), name);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail("{}: expected an object with \"model\"", name);
  const json& model = j["model"];
  if (io::string_field(model, "type", "", name + ": model") != "BPE")
    fail("{}: model.type is {}; only byte-level \"BPE\" tokenizer.json files are supported", name,
         model.contains("type") ? model["type"].dump() : std::string("missing"));
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    fail("{}: normalizer {} is not supported (byte-level BPE files have none; SentencePiece models load from GGUF)",
         name, j["normalizer"].dump().substr(0, 200));
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("{}: model.vocab must be an object", name);

  tokenizer::VocabData v;
  v.source = name;
  // Ids from model.vocab and added_tokens; holes (none in real files) become unused empty tokens.
  int64_t max_id = -1;
  auto check_id = [&](const json& id, const std::string& tok, const char* where) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (int64_t(1) << 30))
      fail("{}: {} id of \"{}\" is not a valid id: {}", name, where, tok, id.dump());
    max_id = std::max(max_id, id.get<int64_t>());
    return id.get<int32_t>();
  };
  std::vector<std::pair<int32_t, std::string>> entries;
  entries.reserve(model["vocab"].size());
  for (const auto& [tok, id] : model["vocab"].items()) entries.emplace_back(check_id(id, tok, "model.vocab"), tok);
  struct Added {
    int32_t id;
    std::string text;
    bool special;
  };
  std::vector<Added> added;
  if (j.contains("added_tokens")) {
    if (!j["added_tokens"].is_array()) fail("{}: added_tokens must be a list", name);
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id"))
        fail("{}: each added_tokens entry needs a string \"content\" and an \"id\"", name);
      const std::string text = a["content"].get<std::string>();
      const bool special = io::bool_field(a, "special", false, name + ": added_tokens entry");
      added.push_back({check_id(a["id"], text, "added_tokens"), text, special});
    }
  }
  // Holes cost a token slot each: a few bytes of JSON must not claim 2^30 empty tokens (32 GiB of slots).
  if (max_id + 1 > io::tokenizer_json_id_limit(j))
    fail("{}: ids reach {} but only {} tokens are listed (model.vocab and added_tokens): ids must be nearly dense",
         name, max_id, entries.size() + added.size());
  v.tokens.assign(static_cast<size_t>(max_id + 1), std::string());
  v.types.assign(v.tokens.size(), TokenType::unused);
  for (auto& [id, tok] : entries) {
    if (v.types[id] != TokenType::unused) fail("{}: id {} is given to both \"{}\" and \"{}\"", name, id, v.tokens[id], tok);
    v.tokens[id] = std::move(tok);
    v.types[id] = TokenType::normal;
  }
  for (auto& a : added) {
    if (v.types[a.id] != TokenType::unused && v.tokens[a.id] != a.text)
      fail("{}: id {} is given to both \"{}\" and \"{}\"", name, a.id, v.tokens[a.id], a.text);
    v.tokens[a.id] = a.text;
    v.types[a.id] = a.special ? TokenType::control : TokenType::user_defined;
  }
  if (model.contains("merges")) {
    if (!model["merges"].is_array()) fail("{}: model.merges must be a list", name);
    v.merges.reserve(model["merges"].size());
    for (const auto& m : model["merges"]) {
      if (m.is_string()) v.merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        v.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      else fail("{}: a merge is neither \"a b\" nor [\"a\", \"b\"]: {}", name, m.dump());
    }
  }
  v.ignore_merges = io::bool_field(model, "ignore_merges", false, name + ": model");
  if (!j.contains("pre_tokenizer") || j["pre_tokenizer"].is_null())
    fail("{}: pre_tokenizer is missing; byte-level BPE needs a ByteLevel pre-tokenizer", name);
  add_pretokenizer(j["pre_tokenizer"], name, v.pre_patterns);
  if (v.pre_patterns.empty()) fail("{}: the pre_tokenizer splits nothing (ByteLevel with use_regex = false alone)", name);
  v.pre_name = v.ignore_merges ? "tokenizer.json, ignore_merges" : "tokenizer.json";

  auto id_of = [&](const std::string& text) -> int32_t {
    for (int32_t i = 0; i < static_cast<int32_t>(v.tokens.size()); ++i)
      if (v.tokens[i] == text && v.types[i] != TokenType::unused) return i;
    return -1;
  };
  const auto pp_bos =
      j.contains("post_processor") ? template_bos(j["post_processor"], name + ": post_processor") : std::nullopt;
  const fs::path cfg_path = file.parent_path() / "tokenizer_config.json";
  json cfg = json::object();
  if (fs::exists(cfg_path, ec)) cfg = io::parse_json_strict(io::read_text_file(cfg_path.string(), 64ull << 20), cfg_path.string());
  const std::string cfg_name = cfg_path.string();
  auto named = [&](const char* key, std::initializer_list<const char*> fallbacks) -> int32_t {
    if (auto t = token_field(cfg, key)) {
      const int32_t id = id_of(*t);
      if (id < 0) fail("{}: {} \"{}\" is not in the vocabulary of {}", cfg_name, key, *t, name);
      return id;
    }
    for (const char* f : fallbacks)
      if (int32_t id = id_of(f); id >= 0) return id;
    return -1;
  };
  v.bos = pp_bos ? id_of(*pp_bos) : -1;
  if (token_field(cfg, "bos_token") || v.bos < 0) v.bos = named("bos_token", {"<|begin_of_text|>", "<s>"});
  v.eos = named("eos_token", {"<|end_of_text|>", "</s>", "<|endoftext|>"});
  v.unk = named("unk_token", {});
  // add_bos_token when the config says so; otherwise what encode(add_special_tokens=True) does: the
  // post-processor's template.
  v.add_bos = cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean() ? cfg["add_bos_token"].get<bool>()
                                                                                 : pp_bos.has_value();
  if (cfg.contains("chat_template")) {
    const json& t = cfg["chat_template"];
    if (t.is_string()) {
      v.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const auto& e : t)
        if (io::string_field(e, "name", "", cfg_name + ": chat_template entry") == "default" &&
            e.contains("template") && e["template"].is_string())
          v.chat_template = e["template"].get<std::string>();
    }
  }
  return tokenizer::make_bpe_tokenizer(std::move(v));
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_hf(const std::string& path) {
  // The fields read above are type-checked with messages of their own; a JSON library error from anything they
  // miss still names the file rather than escaping as nlohmann's type_error.
  try {
    return load_hf_tokenizer(path);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", path, e.what());
  }
}

}  // namespace bitnet
