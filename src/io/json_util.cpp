#include "io/json_util.h"

#include <bitnet/error.h>
#include <bitnet/files.h>

#include <fstream>
#include <set>
#include <sys/stat.h>
#include <vector>

namespace bitnet::io {

nlohmann::json parse_json_strict(std::string_view text, std::string_view file, int max_depth,
                                 std::vector<std::string>* duplicates) {
  using nlohmann::json;
  // One set of keys per open object: a key seen twice in the same object is an error.
  std::vector<std::set<std::string>> keys;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth) fail("{}: JSON nests deeper than {} levels", file, max_depth);
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) {
          if (duplicates == nullptr) fail("{}: duplicate JSON key \"{}\"", file, parsed.get<std::string>());
          duplicates->push_back(parsed.get<std::string>());
        }
        break;
      default: break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", file, e.what());
  }
}

std::string read_text_file(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail("cannot open '{}'", path);
  if (!S_ISREG(st.st_mode)) fail("'{}' is not a regular file", path);
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    fail("{}: {} bytes is larger than the {} bytes accepted for this kind of file", path, st.st_size, max_bytes);
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open '{}'", path);
  std::string s(static_cast<size_t>(st.st_size), '\0');
  f.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(f.gcount()));
  return s;
}

std::string_view json_type_name(const nlohmann::json& j) { return j.type_name(); }

namespace {

const nlohmann::json* field_of(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

std::string string_field(const nlohmann::json& obj, std::string_view key, std::string fallback,
                         std::string_view where) {
  const nlohmann::json* v = field_of(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_string())
    fail("{}: \"{}\" must be a string, got {} {}", where, key, json_type_name(*v), v->dump().substr(0, 80));
  return v->get<std::string>();
}

int64_t tokenizer_json_id_limit(const nlohmann::json& j) {
  size_t listed = 0;
  if (j.is_object() && j.contains("model") && j["model"].is_object() && j["model"].contains("vocab"))
    listed += j["model"]["vocab"].size();
  if (j.is_object() && j.contains("added_tokens")) listed += j["added_tokens"].size();
  return 2 * static_cast<int64_t>(listed) + 1024;
}

bool bool_field(const nlohmann::json& obj, std::string_view key, bool fallback, std::string_view where) {
  const nlohmann::json* v = field_of(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean())
    fail("{}: \"{}\" must be true or false, got {} {}", where, key, json_type_name(*v), v->dump().substr(0, 80));
  return v->get<bool>();
}

}  // namespace bitnet::io

namespace bitnet {
std::string read_regular_file(const std::string& path, uint64_t max_bytes) { return io::read_text_file(path, max_bytes); }
}  // namespace bitnet
