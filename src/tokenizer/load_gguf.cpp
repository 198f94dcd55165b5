// Tokenizer from GGUF metadata: tokenizer.ggml.{model, pre, tokens, token_type, scores, merges, *_token_id,
// add_bos_token, add_space_prefix} and tokenizer.chat_template, as llama.cpp's converters write them.
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <fmt/ranges.h>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

namespace bitnet {

namespace {

const std::vector<std::string>& string_array(const GgufFile& f, std::string_view key) {
  const GgufValue& v = f.at(key);
  if (v.type != GgufValueType::array || v.elem_type != GgufValueType::string)
    fail("{}: {} must be an array of strings, got {}", f.path(), key, gguf_value_type_name(v.type));
  return v.strings;
}

const GgufValue* numeric_array(const GgufFile& f, std::string_view key, size_t expect) {
  const GgufValue* v = f.find(key);
  if (!v) return nullptr;
  if (v->type != GgufValueType::array || v->elem_type == GgufValueType::string || v->elem_type == GgufValueType::array)
    fail("{}: {} must be an array of numbers", f.path(), key);
  if (v->count != expect) fail("{}: {} has {} entries for {} tokens", f.path(), key, v->count, expect);
  return v;
}

int32_t optional_id(const GgufFile& f, std::string_view key, size_t n_vocab) {
  const GgufValue* v = f.find(key);
  if (!v) return -1;
  const auto id = v->as_int();
  if (!id) fail("{}: {} must be an integer, got {}", f.path(), key, gguf_value_type_name(v->type));
  if (*id < 0 || *id >= static_cast<int64_t>(n_vocab))
    fail("{}: {} = {} is outside the vocabulary of {} tokens", f.path(), key, *id, n_vocab);
  return static_cast<int32_t>(*id);
}

bool optional_bool(const GgufFile& f, std::string_view key, bool fallback) {
  const GgufValue* v = f.find(key);
  if (!v) return fallback;
  const auto i = v->as_int();
  if (!i) fail("{}: {} must be a boolean", f.path(), key);
  return *i != 0;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  using tokenizer::VocabData;
  if (!f.find("tokenizer.ggml.model")) fail("{}: no tokenizer in this file (tokenizer.ggml.model is missing)", f.path());
  const std::string model = f.get_string("tokenizer.ggml.model");
  VocabData v;
  v.source = f.path();
  v.tokens = string_array(f, "tokenizer.ggml.tokens");
  const size_t n = v.tokens.size();
  if (n == 0 || n > (1u << 30)) fail("{}: tokenizer.ggml.tokens has {} entries", f.path(), n);
  v.types.assign(n, TokenType::normal);
  if (const GgufValue* t = numeric_array(f, "tokenizer.ggml.token_type", n)) {
    for (size_t i = 0; i < n; ++i) {
      const auto x = t->int_at(i);
      if (!x || *x < 0 || *x > 6) fail("{}: tokenizer.ggml.token_type[{}] is not a token type (0..6)", f.path(), i);
      v.types[i] = static_cast<TokenType>(*x);
    }
  }
  v.bos = optional_id(f, "tokenizer.ggml.bos_token_id", n);
  v.eos = optional_id(f, "tokenizer.ggml.eos_token_id", n);
  v.eot = optional_id(f, "tokenizer.ggml.eot_token_id", n);
  v.eom = optional_id(f, "tokenizer.ggml.eom_token_id", n);
  v.unk = optional_id(f, "tokenizer.ggml.unknown_token_id", n);
  if (const GgufValue* t = f.find("tokenizer.chat_template")) {
    if (t->type != GgufValueType::string) fail("{}: tokenizer.chat_template must be a string", f.path());
    v.chat_template = t->str;
  }
  if (model == "llama") {
    const GgufValue* s = numeric_array(f, "tokenizer.ggml.scores", n);
    if (!s) fail("{}: tokenizer.ggml.scores is required for a SentencePiece (\"llama\") tokenizer", f.path());
    v.scores.resize(n);
    for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>(*s->float_at(i));
    v.add_bos = optional_bool(f, "tokenizer.ggml.add_bos_token", true);
    v.add_space_prefix = optional_bool(f, "tokenizer.ggml.add_space_prefix", true);
    return tokenizer::make_spm_tokenizer(std::move(v));
  }
  if (model == "gpt2") {
    v.merges = string_array(f, "tokenizer.ggml.merges");
    v.pre_name = f.find("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "default";
    const auto spec = tokenizer::find_pretokenizer(v.pre_name.empty() ? "default" : v.pre_name);
    if (!spec)
      fail("{}: tokenizer.ggml.pre = \"{}\" is not a pre-tokenizer llama.cpp knows (supported: {})", f.path(),
           v.pre_name, fmt::join(tokenizer::pretokenizer_names(), ", "));
    if (!spec->unsupported.empty())
      fail("{}: tokenizer.ggml.pre = \"{}\" is not supported: {}", f.path(), v.pre_name, spec->unsupported);
    v.pre_patterns = spec->patterns;
    v.ignore_merges = spec->ignore_merges;
    v.add_bos = optional_bool(f, "tokenizer.ggml.add_bos_token", spec->add_bos);
    return tokenizer::make_bpe_tokenizer(std::move(v));
  }
  fail("{}: tokenizer.ggml.model = \"{}\" is not supported (supported: \"gpt2\" byte-level BPE, \"llama\" "
       "SentencePiece)", f.path(), model);
}

}  // namespace bitnet
