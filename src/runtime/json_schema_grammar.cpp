// JSON Schema -> GBNF. Each schema becomes a rule whose sentences are the compact-or-spaced JSON texts the schema
// accepts; the keywords honoured are listed in docs/structured-output.md. A keyword that would constrain the
// value but is not honoured here is an error naming it and its place, never a looser grammar in silence.
// Annotations (title, description, examples ...) constrain nothing and are skipped.
#include <bitnet/error.h>
#include <bitnet/grammar.h>
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace bitnet {

namespace {

using json = nlohmann::ordered_json;

constexpr int kMaxSchemaDepth = 64;
constexpr int64_t kMaxCount = 10000;  // minItems / maxLength ... beyond this the grammar would be huge

// The building blocks, added to a grammar only when used. ws: JSON whitespace, bounded so that a model cannot
// stall in blank space (as llama.cpp's converter does).
const std::map<std::string, std::string>& primitives() {
  static const std::map<std::string, std::string> p = {
      {"ws", R"(| " " | "\n" [ \t]{0,20})"},
      {"boolean", R"(("true" | "false") ws)"},
      {"null", R"("null" ws)"},
      {"integral-part", R"([0] | [1-9] [0-9]{0,15})"},
      {"integer", R"(("-"? integral-part) ws)"},
      {"nonneg-integer", R"(integral-part ws)"},
      {"positive-integer", R"([1-9] [0-9]{0,15} ws)"},
      {"number", R"(("-"? integral-part) ("." [0-9]{1,16})? ([eE] [-+]? integral-part)? ws)"},
      {"char", R"([^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt/] | "u" [0-9a-fA-F]{4}))"},
      {"string", R"("\"" char* "\"" ws)"},
      {"value", R"(object | array | string | number | boolean | null)"},
      {"object", R"("{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws)"},
      {"array", R"("[" ws ( value ("," ws value)* )? "]" ws)"},
      {"date", R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] ))"},
      {"time", R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))"},
      {"date-time", R"(date "T" time)"},
      {"uuid", R"([0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12})"},
      {"date-string", R"("\"" date "\"" ws)"},
      {"time-string", R"("\"" time "\"" ws)"},
      {"date-time-string", R"("\"" date-time "\"" ws)"},
      {"uuid-string", R"("\"" uuid "\"" ws)"},
  };
  return p;
}

// Which primitives a primitive refers to (so that using one brings in the others).
const std::map<std::string, std::vector<std::string>>& primitive_deps() {
  static const std::map<std::string, std::vector<std::string>> d = {
      {"boolean", {"ws"}}, {"null", {"ws"}}, {"integer", {"integral-part", "ws"}},
      {"nonneg-integer", {"integral-part", "ws"}}, {"positive-integer", {"ws"}},
      {"number", {"integral-part", "ws"}}, {"string", {"char", "ws"}},
      {"value", {"object", "array", "string", "number", "boolean", "null"}},
      {"object", {"ws", "string", "value"}}, {"array", {"ws", "value"}}, {"date-time", {"date", "time"}},
      {"date-string", {"date", "ws"}}, {"time-string", {"time", "ws"}}, {"date-time-string", {"date-time", "ws"}},
      {"uuid-string", {"uuid", "ws"}},
  };
  return d;
}

// A GBNF string literal for these bytes.
std::string literal(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
        else out += c;
    }
  }
  return out + "\"";
}

// Keywords that describe a schema without constraining its values.
const std::set<std::string, std::less<>>& annotations() {
  static const std::set<std::string, std::less<>> a = {
      "title", "description", "$schema", "$id", "id", "$comment", "default", "examples", "example", "deprecated",
      "readOnly", "writeOnly", "$defs", "definitions", "contentMediaType", "contentEncoding", "discriminator"};
  return a;
}

class Converter {
 public:
  Converter(const json& root, std::string_view source) : root_(root), source_(source) {}

  std::string convert() {
    const std::string root_body = visit(root_, "root", "#", 0);
    std::string out = "root ::= " + root_body + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    std::set<std::string> done;
    std::vector<std::string> todo(used_.begin(), used_.end());
    while (!todo.empty()) {
      const std::string p = todo.back();
      todo.pop_back();
      if (!done.insert(p).second) continue;
      out += p + " ::= " + primitives().at(p) + "\n";
      if (const auto d = primitive_deps().find(p); d != primitive_deps().end())
        todo.insert(todo.end(), d->second.begin(), d->second.end());
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw Error(fmt::format("[json_schema] {}: {}: {}", source_, path, what));
  }

  std::string use(const std::string& primitive) {
    used_.insert(primitive);
    return primitive;
  }

  std::string new_rule(const std::string& hint, std::string body) {
    std::string base;
    for (const char c : hint) base += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    if (base.empty() || primitives().count(base) || base == "root") base = "r-" + base;
    std::string name = base;
    for (int i = 2; rules_.count(name) || reserved_.count(name); ++i) name = fmt::format("{}-{}", base, i);
    rules_[name] = std::move(body);
    return name;
  }

  int64_t count(const json& s, const char* key, const std::string& path, int64_t fallback) const {
    const auto it = s.find(key);
    if (it == s.end()) return fallback;
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxCount)
      fail(path + "/" + key, fmt::format("must be an integer in [0, {}]", kMaxCount));
    return it->get<int64_t>();
  }

  // "x" repeated between lo and hi times (hi < 0: no upper bound), joined by `sep` (GBNF).
  static std::string repeated(const std::string& x, int64_t lo, int64_t hi, const std::string& sep) {
    const std::string more = sep.empty() ? x : "(" + sep + " " + x + ")";
    auto bounds = [](int64_t a, int64_t b) { return b < 0 ? fmt::format("{{{},}}", a) : fmt::format("{{{},{}}}", a, b); };
    if (hi == 0) return "";
    if (lo == 0) return fmt::format("({} {}{})?", x, more, bounds(0, hi < 0 ? -1 : hi - 1));
    return fmt::format("{} {}{}", x, more, bounds(lo - 1, hi < 0 ? -1 : hi - 1));
  }

  const json& resolve(const std::string& ref, const std::string& path) const {
    if (ref.empty() || ref[0] != '#') fail(path + "/$ref", fmt::format("only references inside the schema (\"#/...\") are supported, got \"{}\"", ref));
    try {
      const json::json_pointer pointer(ref.substr(1));
      if (!root_.contains(pointer)) fail(path + "/$ref", fmt::format("\"{}\" does not exist in the schema", ref));
      return root_.at(pointer);
    } catch (const json::exception& e) {
      fail(path + "/$ref", fmt::format("\"{}\" is not a JSON pointer: {}", ref, e.what()));
    }
  }

  // The GBNF expression (usually a rule name) for values of `s`.
  std::string visit(const json& s, const std::string& hint, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) fail(path, fmt::format("the schema nests deeper than {} levels", kMaxSchemaDepth));
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(path, "the schema `false` accepts no value");
      return use("value");
    }
    if (!s.is_object()) fail(path, "a schema must be an object or a boolean");
    if (const auto ref = s.find("$ref"); ref != s.end()) {
      if (!ref->is_string()) fail(path + "/$ref", "must be a string");
      for (const auto& [k, v] : s.items())
        if (k != "$ref" && !annotations().count(k)) fail(path + "/" + k, "keywords beside $ref are not supported");
      const std::string target = ref->get<std::string>();
      if (const auto done = refs_.find(target); done != refs_.end()) return done->second;
      // Named before its body is visited, so that a recursive schema refers to itself.
      std::string name = hint_from_ref(target);
      for (int i = 2; rules_.count(name) || reserved_.count(name) || primitives().count(name); ++i)
        name = fmt::format("{}-{}", hint_from_ref(target), i);
      reserved_.insert(name);
      refs_[target] = name;
      std::string body = visit(resolve(target, path), name, target, depth + 1);
      rules_[name] = std::move(body);
      reserved_.erase(name);
      return name;
    }
    for (const auto& [k, v] : s.items())
      if (!annotations().count(k) && !known_.count(k))
        fail(path + "/" + k, fmt::format("the keyword '{}' is not supported (see docs/structured-output.md)", k));

    if (const auto c = s.find("const"); c != s.end()) return "(" + literal(c->dump()) + " " + use("ws") + ")";
    if (const auto e = s.find("enum"); e != s.end()) {
      if (!e->is_array() || e->empty()) fail(path + "/enum", "must be a non-empty array");
      std::string alts;
      for (const json& v : *e) alts += (alts.empty() ? "" : " | ") + literal(v.dump());
      return new_rule(hint, "(" + alts + ") " + use("ws"));
    }
    for (const char* key : {"anyOf", "oneOf"}) {  // oneOf as anyOf: the grammar cannot count matches
      if (const auto a = s.find(key); a != s.end()) {
        if (!a->is_array() || a->empty()) fail(path + "/" + key, "must be a non-empty array of schemas");
        for (const auto& [k, v] : s.items())
          if (k != key && !annotations().count(k) && k != "type")
            fail(path + "/" + k, fmt::format("keywords beside {} are not supported", key));
        std::string alts;
        for (size_t i = 0; i < a->size(); ++i)
          alts += (alts.empty() ? "" : " | ") + visit((*a)[i], fmt::format("{}-{}", hint, i), fmt::format("{}/{}/{}", path, key, i), depth + 1);
        return new_rule(hint, alts);
      }
    }
    if (const auto a = s.find("allOf"); a != s.end()) return visit(merge_all_of(s, *a, path), hint, path, depth + 1);

    const auto t = s.find("type");
    std::vector<std::string> types;
    if (t == s.end()) {
      if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) types = {"object"};
      else if (s.contains("items") || s.contains("prefixItems")) types = {"array"};
      else if (s.contains("minLength") || s.contains("maxLength") || s.contains("format")) types = {"string"};
      else return use("value");
    } else if (t->is_string()) {
      types = {t->get<std::string>()};
    } else if (t->is_array() && !t->empty()) {
      for (const json& x : *t) {
        if (!x.is_string()) fail(path + "/type", "must be a string or an array of strings");
        types.push_back(x.get<std::string>());
      }
    } else {
      fail(path + "/type", "must be a string or a non-empty array of strings");
    }
    std::string alts;
    for (const std::string& type : types) alts += (alts.empty() ? "" : " | ") + typed(s, type, hint, path, depth);
    return types.size() == 1 ? alts : new_rule(hint, alts);
  }

  static std::string hint_from_ref(const std::string& ref) {
    const size_t slash = ref.rfind('/');
    std::string name;
    for (const char c : ref.substr(slash == std::string::npos ? 0 : slash + 1))
      name += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    return name.find_first_not_of('-') == std::string::npos || name == "root" ? "ref" : name;
  }

  // allOf of object schemas: their properties and required lists together.
  json merge_all_of(const json& s, const json& all, const std::string& path) const {
    if (!all.is_array() || all.empty()) fail(path + "/allOf", "must be a non-empty array of schemas");
    json merged = s;
    merged.erase("allOf");
    for (size_t i = 0; i < all.size(); ++i) {
      const json* part = &all[i];
      if (part->is_object() && part->contains("$ref") && (*part)["$ref"].is_string())
        part = &resolve((*part)["$ref"].get<std::string>(), fmt::format("{}/allOf/{}", path, i));
      if (!part->is_object()) fail(fmt::format("{}/allOf/{}", path, i), "must be a schema object");
      for (const auto& [k, v] : part->items()) {
        if (k == "properties") {
          for (const auto& [pk, pv] : v.items()) merged["properties"][pk] = pv;
        } else if (k == "required") {
          for (const json& r : v) merged["required"].push_back(r);
        } else if (k == "type" || annotations().count(k)) {
          if (k == "type" && v != "object") fail(fmt::format("{}/allOf/{}/type", path, i), "allOf is supported for object schemas only");
          merged[k] = v;
        } else {
          fail(fmt::format("{}/allOf/{}/{}", path, i, k), "allOf is supported for object schemas (properties, required) only");
        }
      }
    }
    merged["type"] = "object";
    return merged;
  }

  std::string typed(const json& s, const std::string& type, const std::string& hint, const std::string& path, int depth) {
    auto only = [&](std::initializer_list<const char*> allowed) {
      static const std::set<std::string, std::less<>> generic = {"type", "enum", "const"};
      for (const auto& [k, v] : s.items()) {
        if (annotations().count(k) || generic.count(k)) continue;
        bool ok = false;
        for (const char* a : allowed) ok = ok || k == a;
        if (!ok && !belongs_to_other_type(k, s)) fail(path + "/" + k, fmt::format("'{}' is not supported for type '{}' (see docs/structured-output.md)", k, type));
      }
    };
    if (type == "null") return use("null");
    if (type == "boolean") return use("boolean");
    if (type == "number") {
      only({});
      return use("number");
    }
    if (type == "integer") {
      only({"minimum", "exclusiveMinimum"});
      if (const auto m = s.find("minimum"); m != s.end()) {
        if (*m == 0) return use("nonneg-integer");
        if (*m == 1) return use("positive-integer");
        fail(path + "/minimum", "only minimum 0 or 1 is supported for integers");
      }
      if (const auto m = s.find("exclusiveMinimum"); m != s.end()) {
        if (*m == 0) return use("positive-integer");
        if (*m == -1) return use("nonneg-integer");
        fail(path + "/exclusiveMinimum", "only exclusiveMinimum -1 or 0 is supported for integers");
      }
      return use("integer");
    }
    if (type == "string") {
      only({"minLength", "maxLength", "format"});
      if (const auto f = s.find("format"); f != s.end()) {
        const std::string format = f->is_string() ? f->get<std::string>() : "";
        if (format != "date" && format != "time" && format != "date-time" && format != "uuid")
          fail(path + "/format", fmt::format("format {} is not supported (date, time, date-time and uuid are)", f->dump()));
        return use(format + "-string");
      }
      const int64_t lo = count(s, "minLength", path, 0), hi = count(s, "maxLength", path, -1);
      if (hi >= 0 && hi < lo) fail(path, "maxLength is below minLength");
      if (lo == 0 && hi < 0) return use("string");
      use("char");
      use("ws");
      const std::string chars = hi < 0 ? fmt::format("char{{{},}}", lo) : fmt::format("char{{{},{}}}", lo, hi);
      return new_rule(hint, "\"\\\"\" " + chars + " \"\\\"\" ws");
    }
    if (type == "array") {
      only({"items", "prefixItems", "minItems", "maxItems"});
      use("ws");
      const int64_t lo = count(s, "minItems", path, 0), hi = count(s, "maxItems", path, -1);
      if (hi >= 0 && hi < lo) fail(path, "maxItems is below minItems");
      std::string body = "\"[\" ws ";
      if (const auto p = s.find("prefixItems"); p != s.end()) {
        if (!p->is_array()) fail(path + "/prefixItems", "must be an array of schemas");
        if (s.contains("items") && s["items"] != false) fail(path + "/items", "items beside prefixItems is supported only as false");
        std::string seq;
        for (size_t i = 0; i < p->size(); ++i)
          seq += (i ? " \",\" ws " : "") + visit((*p)[i], fmt::format("{}-{}", hint, i), fmt::format("{}/prefixItems/{}", path, i), depth + 1);
        return new_rule(hint, body + seq + " \"]\" ws");
      }
      std::string item;
      if (const auto i = s.find("items"); i != s.end()) {
        if (i->is_array()) fail(path + "/items", "an array of schemas is the old tuple form: use prefixItems");
        item = visit(*i, hint + "-item", path + "/items", depth + 1);
      } else {
        item = use("value");
      }
      return new_rule(hint, body + repeated(item, lo, hi, "\",\" ws") + " \"]\" ws");
    }
    if (type == "object") {
      only({"properties", "required", "additionalProperties"});
      return object(s, hint, path, depth);
    }
    fail(path + "/type", fmt::format("unknown type \"{}\"", type));
  }

  // With "type": ["string", "integer"], minLength belongs to the string branch: not an error in the integer one.
  static bool belongs_to_other_type(const std::string& key, const json& s) {
    static const std::map<std::string, std::string, std::less<>> owner = {
        {"minLength", "string"}, {"maxLength", "string"}, {"format", "string"}, {"items", "array"},
        {"prefixItems", "array"}, {"minItems", "array"}, {"maxItems", "array"}, {"properties", "object"},
        {"required", "object"}, {"additionalProperties", "object"}, {"minimum", "integer"},
        {"exclusiveMinimum", "integer"}};
    const auto o = owner.find(key);
    const auto t = s.find("type");
    if (o == owner.end() || t == s.end() || !t->is_array()) return false;
    for (const json& x : *t)
      if (x == o->second) return true;
    return false;
  }

  // Properties in the order declared, each optional one skippable, commas only between those present.
  std::string object(const json& s, const std::string& hint, const std::string& path, int depth) {
    use("ws");
    std::vector<std::pair<std::string, bool>> props;  // (key-value rule, required)
    std::set<std::string> required;
    if (const auto r = s.find("required"); r != s.end()) {
      if (!r->is_array()) fail(path + "/required", "must be an array of property names");
      for (const json& n : *r) {
        if (!n.is_string()) fail(path + "/required", "must be an array of property names");
        required.insert(n.get<std::string>());
      }
    }
    std::set<std::string> declared;
    if (const auto p = s.find("properties"); p != s.end()) {
      if (!p->is_object()) fail(path + "/properties", "must be an object");
      for (const auto& [key, sub] : p->items()) {
        declared.insert(key);
        const std::string value = visit(sub, hint + "-" + key, path + "/properties/" + key, depth + 1);
        const std::string kv = new_rule(hint + "-" + key + "-kv", literal(json(key).dump()) + " ws \":\" ws " + value);
        props.emplace_back(kv, required.count(key) > 0);
      }
    }
    for (const std::string& r : required)
      if (!declared.count(r)) fail(path + "/required", fmt::format("\"{}\" is required but not among the properties", r));
    // Extra properties: `additionalProperties` true or a schema; absent or false means none (a generated object
    // holds only what the schema names, as OpenAI's strict mode requires).
    std::string extra;
    if (const auto a = s.find("additionalProperties"); a != s.end() && !(a->is_boolean() && !a->get<bool>())) {
      const std::string value = a->is_boolean() ? use("value") : visit(*a, hint + "-additional", path + "/additionalProperties", depth + 1);
      extra = new_rule(hint + "-additional-kv", use("string") + " \":\" ws " + value);
    }
    // after: the rest once something was written (each present item preceded by a comma); first: the rest when
    // nothing was written yet. Built from the last property back; an expression becomes a rule only when a
    // later step refers to it, so no rule is left unused.
    auto named = [&](std::string& expr, const char* suffix) -> std::string {
      if (expr.find(' ') != std::string::npos) expr = new_rule(hint + suffix, expr);
      return expr;
    };
    std::string after = extra.empty() ? "" : "(\",\" ws " + extra + ")*";
    std::string first = extra.empty() ? "" : "(" + extra + " (\",\" ws " + extra + ")*)?";
    for (size_t i = props.size(); i-- > 0;) {
      const auto& [kv, req] = props[i];
      const std::string rest = after.empty() ? "" : named(after, "-rest");
      const std::string with = rest.empty() ? kv : kv + " " + rest;
      const std::string item_after = req ? "\",\" ws " + kv : "(\",\" ws " + kv + ")?";
      std::string new_first = with;
      if (!req) {
        const std::string skip = first.empty() ? "" : named(first, "-from");
        new_first = skip.empty() ? "(" + with + ")?" : with + " | " + skip;
      }
      after = rest.empty() ? item_after : item_after + " " + rest;
      first = std::move(new_first);
    }
    if (first.find('|') != std::string::npos) first = "(" + first + ")";
    return new_rule(hint, "\"{\" ws " + (first.empty() ? "" : first + " ") + "\"}\" ws");
  }

  const json& root_;
  std::string source_;
  std::map<std::string, std::string> rules_;
  std::set<std::string> reserved_;
  std::map<std::string, std::string> refs_;
  std::set<std::string> used_;
  const std::set<std::string, std::less<>> known_ = {
      "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
      "enum", "const", "anyOf", "oneOf", "allOf", "minLength", "maxLength", "format", "minimum",
      "exclusiveMinimum"};
};

}  // namespace

std::string json_schema_to_gbnf(std::string_view schema_json, std::string_view source) {
  json schema;
  try {
    schema = json::parse(schema_json);
  } catch (const json::exception& e) {
    throw Error(fmt::format("[json_schema] {}: not valid JSON: {}", source, e.what()));
  }
  return Converter(schema, source).convert();
}

}  // namespace bitnet
