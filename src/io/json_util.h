#pragma once
// JSON from files we do not trust (safetensors headers, config.json, index files): parse errors, duplicate
// keys (which nlohmann would silently collapse) and nesting deeper than a limit all become bitnet::Error
// naming the file.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace bitnet::io {

// `duplicates`: when given, a repeated key is not an error: the last value wins (as Python's json, and so
// transformers, reads config files) and "key" is recorded for the caller to warn about.
nlohmann::json parse_json_strict(std::string_view text, std::string_view file, int max_depth = 64,
                                 std::vector<std::string>* duplicates = nullptr);

// Reads a whole (small) text file; refuses files over max_bytes before reading them.
std::string read_text_file(const std::string& path, uint64_t max_bytes = 64ull << 20);

// "object", "string", ... for messages.
std::string_view json_type_name(const nlohmann::json& j);

// obj[key] as a string or a bool: `fallback` when obj is not an object, has no such key or holds null there; an
// error naming `where` and the key when it holds another type (nlohmann's value() throws its own type_error,
// which names neither the file nor the field).
std::string string_field(const nlohmann::json& obj, std::string_view key, std::string fallback,
                         std::string_view where);
bool bool_field(const nlohmann::json& obj, std::string_view key, bool fallback, std::string_view where);

// The most token ids a Hugging Face tokenizer.json may span: the tokens it lists (model.vocab and added_tokens),
// as many again for holes and padded vocabularies, plus 1024. Each id costs a slot, so a few bytes of JSON cannot
// claim 2^30 of them. Both readers of the file (the tokenizer and the GGUF converter) hold it to this.
int64_t tokenizer_json_id_limit(const nlohmann::json& tokenizer_json);

}  // namespace bitnet::io
