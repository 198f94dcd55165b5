#include "tokenizer/jinja_value.h"

#include <fmt/format.h>

#include <cmath>

namespace bitnet::jinja {

bool Value::truthy() const {
  switch (kind) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean: return b;
    case Kind::integer: return i != 0;
    case Kind::floating: return f != 0;
    case Kind::string: return !s.empty();
    case Kind::list: return !list->empty();
    case Kind::dict: return !dict->empty();
    case Kind::function: return true;
  }
  return false;
}

const Value* Value::find(const std::string& key) const {
  if (kind != Kind::dict) return nullptr;
  for (const auto& [k, v] : *dict)
    if (k == key) return &v;
  return nullptr;
}

const char* kind_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined: return "undefined";
    case Value::Kind::none: return "NoneType";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::floating: return "float";
    case Value::Kind::string: return "str";
    case Value::Kind::list: return "list";
    case Value::Kind::dict: return "dict";
    case Value::Kind::function: return "function";
  }
  return "?";
}

namespace {
std::string float_str(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", x);  // shortest round-trip digits, as Python's repr
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}
}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined: return "";
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return v.b ? "True" : "False";
    case Value::Kind::integer: return std::to_string(v.i);
    case Value::Kind::floating: return float_str(v.f);
    case Value::Kind::string: return v.s;
    default: return repr(v);
  }
}

std::string repr(const Value& v) {
  switch (v.kind) {
    case Value::Kind::string: {
      // Python picks single quotes unless the text has a single quote and no double quote.
      const char q = v.s.find('\'') != std::string::npos && v.s.find('"') == std::string::npos ? '"' : '\'';
      std::string out(1, q);
      for (char c : v.s) {
        if (c == q || c == '\\') out += '\\', out += c;
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else out += c;
      }
      return out + q;
    }
    case Value::Kind::list: {
      std::string out = "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        out += repr((*v.list)[k]);
      }
      return out + "]";
    }
    case Value::Kind::dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        if (!first) out += ", ";
        out += repr(Value::string(k));
        out += ": ";
        out += repr(x);
        first = false;
      }
      return out + "}";
    }
    case Value::Kind::function: return "<function>";
    default: return to_str(v);
  }
}

namespace {
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}
}  // namespace

std::string to_json(const Value& v, int indent, int level) {
  std::string nl, close;
  if (indent >= 0) {
    nl.append(1, '\n').append(size_t(indent) * (level + 1), ' ');
    close.append(1, '\n').append(size_t(indent) * level, ' ');
  }
  const std::string sep = indent >= 0 ? "," : ", ";
  switch (v.kind) {
    case Value::Kind::undefined:
    case Value::Kind::none: return "null";
    case Value::Kind::boolean: return v.b ? "true" : "false";
    case Value::Kind::integer: return std::to_string(v.i);
    case Value::Kind::floating: return std::isfinite(v.f) ? float_str(v.f) : (std::isnan(v.f) ? "NaN" : v.f > 0 ? "Infinity" : "-Infinity");
    case Value::Kind::string: return json_string(v.s);
    case Value::Kind::list: {
      if (v.list->empty()) return "[]";
      std::string out = "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += sep;
        out += nl;
        out += to_json((*v.list)[k], indent, level + 1);
      }
      return out + close + "]";
    }
    case Value::Kind::dict: {
      if (v.dict->empty()) return "{}";
      std::string out = "{";
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        if (!first) out += sep;
        out += nl;
        out += json_string(k);
        out += ": ";
        out += to_json(x, indent, level + 1);
        first = false;
      }
      return out + close + "}";
    }
    case Value::Kind::function: return "null";
  }
  return "null";
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Value::Kind::floating || b.kind == Value::Kind::floating) return a.number() == b.number();
    return (a.kind == Value::Kind::boolean ? int64_t(a.b) : a.i) == (b.kind == Value::Kind::boolean ? int64_t(b.b) : b.i);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::undefined:
    case Value::Kind::none: return true;
    case Value::Kind::string: return a.s == b.s;
    case Value::Kind::list:
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!equals((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case Value::Kind::dict:
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, x] : *a.dict) {
        const Value* y = b.find(k);
        if (!y || !equals(x, *y)) return false;
      }
      return true;
    case Value::Kind::function: return a.fn == b.fn;
    default: return false;
  }
}

}  // namespace bitnet::jinja
