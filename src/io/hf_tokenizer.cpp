// HF tokenizer.json (byte-level BPE, the Llama-3 tokenizer of 2B4T) -> GGUF tokenizer.ggml.* metadata, the way
// llama.cpp's converter lays it out (formats.md §2.3.1, §3.1): tokens in id order, token_type, "a b" merges,
// special ids, chat template. Ids the vocabulary does not cover are filled with "[PAD<id>]" tokens of type UNUSED.
#include <bitnet/error.h>
#include <bitnet/model_files.h>

#include <filesystem>

#include "io/json_util.h"

namespace bitnet {

namespace {
constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;
}

std::vector<std::pair<std::string, GgufValue>> hf_tokenizer_to_gguf(const std::string& dir, const ModelConfig& cfg,
                                                                    std::vector<std::string>* notes) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  std::vector<std::pair<std::string, GgufValue>> kv;
  const fs::path path = fs::path(dir) / "tokenizer.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (notes) notes->push_back("no tokenizer.json: the GGUF has no tokenizer (SentencePiece tokenizer.model is not read)");
    return kv;
  }
  const std::string file = path.string();
  const json j = io::parse_json_strict(io::read_text_file(file, 256ull << 20), file);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail("{}: expected an object with \"model\"", file);
  const json& model = j["model"];
  if (!model.contains("type") || model["type"] != "BPE")
    fail("{}: model.type is {}; only byte-level \"BPE\" tokenizers are converted", file,
         model.contains("type") ? model["type"].dump() : std::string("missing"));
  // Only byte-level BPE (GPT-2, Llama-3) maps onto GGUF's "gpt2" vocabulary. A SentencePiece-style BPE in
  // tokenizer.json (Llama-2, 1bitLLM: a normalizer, byte fallback, no ByteLevel step) would be written as gpt2 and
  // tokenize wrongly, so it is left out, saying so, as a missing tokenizer.json is.
  auto is_byte_level = [&file](const json& step) {
    if (!step.is_object()) return false;
    if (io::string_field(step, "type", "", file + ": pre_tokenizer or decoder") == "ByteLevel") return true;
    for (const char* list : {"pretokenizers", "decoders"})
      if (step.contains(list) && step[list].is_array())
        for (const auto& s : step[list])
          if (io::string_field(s, "type", "", file + ": a step of " + list) == "ByteLevel") return true;
    return false;
  };
  const bool byte_level = (j.contains("pre_tokenizer") && is_byte_level(j["pre_tokenizer"])) ||
                          (j.contains("decoder") && is_byte_level(j["decoder"]));
  const bool byte_fallback = io::bool_field(model, "byte_fallback", false, file + ": model");
  if (!byte_level || byte_fallback) {
    if (notes)
      notes->push_back(fmt::format("{} is a SentencePiece-style BPE (no ByteLevel pre-tokenizer or decoder{}): GGUF's "
                                   "byte-level \"gpt2\" vocabulary cannot hold it, so the GGUF has no tokenizer",
                                   file, byte_fallback ? ", byte fallback" : ""));
    return kv;
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("{}: model.vocab must be an object", file);
  const int64_t n_vocab = cfg.vocab_size;
  // Padded vocabularies (vocab_size past the tokenizer's tokens) are real, but a config.json vocab_size near 2^31
  // beside a small tokenizer.json must not allocate 2^31 empty tokens.
  if (n_vocab > io::tokenizer_json_id_limit(j))
    fail("{}: config.json's vocab_size {} is far past the tokens listed here (model.vocab and added_tokens; at most "
         "{} ids)", file, n_vocab, io::tokenizer_json_id_limit(j));
  std::vector<std::string> tokens(static_cast<size_t>(n_vocab));
  std::vector<int32_t> types(static_cast<size_t>(n_vocab), kUnused);
  std::vector<bool> seen(static_cast<size_t>(n_vocab), false);
  auto put = [&](const std::string& tok, const json& id_j, int32_t type, const char* where) {
    if (!id_j.is_number_integer()) fail("{}: {} id of \"{}\" is not an integer", file, where, tok);
    const int64_t id = id_j.get<int64_t>();
    if (id < 0 || id >= n_vocab) fail("{}: {} id {} of \"{}\" is outside vocab_size {}", file, where, id, tok, n_vocab);
    if (seen[id] && tokens[id] != tok) fail("{}: id {} is given to both \"{}\" and \"{}\"", file, id, tokens[id], tok);
    tokens[id] = tok;
    types[id] = type;
    seen[id] = true;
  };
  for (const auto& [tok, id] : model["vocab"].items()) put(tok, id, kNormal, "model.vocab");
  std::string bos_text;
  if (j.contains("added_tokens")) {
    if (!j["added_tokens"].is_array()) fail("{}: added_tokens must be a list", file);
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id"))
        fail("{}: each added_tokens entry needs a string \"content\" and an \"id\"", file);
      const bool special = io::bool_field(a, "special", false, file + ": added_tokens entry");
      put(a["content"].get<std::string>(), a["id"], special ? kControl : kUserDefined, "added_tokens");
    }
  }
  int64_t padded = 0;
  for (int64_t i = 0; i < n_vocab; ++i)
    if (!seen[i]) {
      tokens[i] = fmt::format("[PAD{}]", i);
      ++padded;
    }
  std::vector<std::string> merges;
  if (model.contains("merges")) {
    if (!model["merges"].is_array()) fail("{}: model.merges must be a list", file);
    merges.reserve(model["merges"].size());
    for (const auto& m : model["merges"]) {
      if (m.is_string()) merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      else fail("{}: a merge is neither \"a b\" nor [\"a\", \"b\"]: {}", file, m.dump());
    }
  }
  // Llama-3's pre-tokenizer is recognised by its special tokens; anything else is left to "default".
  bool llama3 = false;
  for (int64_t i = 0; i < n_vocab; ++i) llama3 |= tokens[i] == "<|begin_of_text|>";
  kv.emplace_back("tokenizer.ggml.model", GgufValue::string("gpt2"));
  kv.emplace_back("tokenizer.ggml.pre", GgufValue::string(llama3 ? "llama-bpe" : "default"));
  kv.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens)));
  kv.emplace_back("tokenizer.ggml.token_type", GgufValue::scalar_array<int32_t>(GgufValueType::i32, types));
  kv.emplace_back("tokenizer.ggml.merges", GgufValue::string_array(std::move(merges)));
  if (cfg.bos_token_id) kv.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(*cfg.bos_token_id)));
  if (!cfg.eos_token_ids.empty())
    kv.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(cfg.eos_token_ids[0])));
  if (cfg.pad_token_id) kv.emplace_back("tokenizer.ggml.padding_token_id", GgufValue::u32(uint32_t(*cfg.pad_token_id)));
  kv.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(llama3));
  const fs::path tc = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(tc, ec)) {
    const json t = io::parse_json_strict(io::read_text_file(tc.string(), 64ull << 20), tc.string());
    if (t.is_object() && t.contains("chat_template") && t["chat_template"].is_string())
      kv.emplace_back("tokenizer.chat_template", GgufValue::string(t["chat_template"].get<std::string>()));
  }
  if (notes) {
    notes->push_back(fmt::format("tokenizer: {} tokens ({} padding ids), {} merges, pre = {}", n_vocab, padded,
                                 merges.size(), llama3 ? "llama-bpe" : "default"));
  }
  return kv;
}

}  // namespace bitnet
