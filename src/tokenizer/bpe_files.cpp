// A trained byte-level BPE vocabulary as Hugging Face tokenizer.json (written and read back) and as GGUF
// tokenizer.ggml.* metadata.
#include <bitnet/bpe_train.h>
#include <bitnet/error.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/json_util.h"

namespace bitnet {

using nlohmann::json;

namespace {
json byte_level(bool add_prefix_space) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}, {"use_regex", true}};
}
}  // namespace

std::string bpe_tokenizer_json(const BpeVocabulary& v) {
  json vocab = json::object();
  for (int32_t i = 0; i < v.first_special; ++i) vocab[v.tokens[static_cast<size_t>(i)]] = i;
  json added = json::array();
  for (int32_t i = v.first_special; i < static_cast<int32_t>(v.tokens.size()); ++i)
    added.push_back({{"id", i}, {"content", v.tokens[static_cast<size_t>(i)]}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}});
  const json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level(false)},
      {"post_processor", nullptr},
      {"decoder", byte_level(true)},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", v.merges}}},
  };
  return j.dump(1);
}

void write_bpe_tokenizer_json(const BpeVocabulary& v, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  BITNET_CHECK(out.good(), "[tokenizer] cannot write '{}'", path);
  out << bpe_tokenizer_json(v) << "\n";
  BITNET_CHECK(out.good(), "[tokenizer] writing '{}' failed", path);
}

BpeVocabulary read_bpe_tokenizer_json(const std::string& path) {
  const json j = io::parse_json_strict(io::read_text_file(path, 256ull << 20), path);
  BITNET_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), "{}: expected an object with \"model\"", path);
  const json& m = j["model"];
  BITNET_CHECK(io::string_field(m, "type", "", path) == "BPE", "{}: model.type must be \"BPE\"", path);
  const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
  BITNET_CHECK(pre.is_object() && io::string_field(pre, "type", "", path) == "ByteLevel" &&
                   io::bool_field(pre, "use_regex", true, path) &&
                   !io::bool_field(pre, "add_prefix_space", false, path),
               "{}: pre_tokenizer must be ByteLevel with use_regex and no prefix space (GPT-2's), got {}", path,
               pre.dump());
  BITNET_CHECK(m.contains("vocab") && m["vocab"].is_object(), "{}: model.vocab must be an object", path);
  BpeVocabulary v;
  const size_t n = m["vocab"].size();
  v.tokens.assign(n, std::string());
  std::vector<bool> seen(n, false);
  for (const auto& [tok, id] : m["vocab"].items()) {
    BITNET_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < static_cast<int64_t>(n),
                 "{}: model.vocab[\"{}\"] = {} is not an id in 0..{} (ids must be dense)", path, tok, id.dump(), n - 1);
    const auto i = id.get<size_t>();
    BITNET_CHECK(!seen[i], "{}: model.vocab gives id {} twice", path, i);
    seen[i] = true;
    v.tokens[i] = tok;
  }
  v.first_special = static_cast<int32_t>(n);
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      BITNET_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                       a["content"].is_string(),
                   "{}: each added_tokens entry needs an integer \"id\" and a string \"content\"", path);
      BITNET_CHECK(a["id"].get<int64_t>() == static_cast<int64_t>(v.tokens.size()),
                   "{}: added_tokens id {} must follow the vocabulary densely (expected {})", path, a["id"].dump(),
                   v.tokens.size());
      v.tokens.push_back(a["content"].get<std::string>());
    }
  }
  BITNET_CHECK(m.contains("merges") && m["merges"].is_array(), "{}: model.merges must be a list", path);
  for (const auto& x : m["merges"]) {
    if (x.is_string()) v.merges.push_back(x.get<std::string>());
    else if (x.is_array() && x.size() == 2 && x[0].is_string() && x[1].is_string())
      v.merges.push_back(x[0].get<std::string>() + " " + x[1].get<std::string>());
    else fail("{}: a merge is neither \"a b\" nor [\"a\", \"b\"]: {}", path, x.dump());
  }
  return v;
}

std::vector<std::pair<std::string, GgufValue>> bpe_gguf_keys(const BpeVocabulary& v) {
  std::vector<int32_t> types(v.tokens.size(), 1);  // normal
  for (size_t i = static_cast<size_t>(v.first_special); i < types.size(); ++i) types[i] = 3;  // control
  std::vector<std::pair<std::string, GgufValue>> keys = {
      {"tokenizer.ggml.model", GgufValue::string("gpt2")},
      {"tokenizer.ggml.pre", GgufValue::string("gpt-2")},
      {"tokenizer.ggml.tokens", GgufValue::string_array(v.tokens)},
      {"tokenizer.ggml.token_type", GgufValue::scalar_array<int32_t>(GgufValueType::i32, types)},
      {"tokenizer.ggml.merges", GgufValue::string_array(v.merges)},
      {"tokenizer.ggml.add_bos_token", GgufValue::boolean(false)},
  };
  if (v.eos_id() >= 0) keys.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(v.eos_id())));
  return keys;
}

}  // namespace bitnet
