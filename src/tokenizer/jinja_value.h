#pragma once
// Values of the Jinja interpreter, with Python's semantics where the output depends on them (truthiness, str(),
// repr() of lists and dicts, ==, ordering).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bitnet::jinja {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python dicts

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};
using Function = std::function<Value(Args&)>;

struct Value {
  enum class Kind { undefined, none, boolean, integer, floating, string, list, dict, function };
  Kind kind = Kind::undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // also a namespace() object (mutable through {% set ns.x = ... %})
  std::shared_ptr<Function> fn;
  std::string name;  // undefined: the name that was looked up, for messages

  static Value none() { Value v; v.kind = Kind::none; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::boolean; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::integer; v.i = x; return v; }
  static Value floating(double x) { Value v; v.kind = Kind::floating; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.kind = Kind::string; v.s = std::move(x); return v; }
  static Value make_list(List x = {}) { Value v; v.kind = Kind::list; v.list = std::make_shared<List>(std::move(x)); return v; }
  static Value make_dict(Dict x = {}) { Value v; v.kind = Kind::dict; v.dict = std::make_shared<Dict>(std::move(x)); return v; }
  static Value function(Function f) { Value v; v.kind = Kind::function; v.fn = std::make_shared<Function>(std::move(f)); return v; }
  static Value undefined(std::string name) { Value v; v.name = std::move(name); return v; }

  bool is_undefined() const { return kind == Kind::undefined; }
  bool is_number() const { return kind == Kind::integer || kind == Kind::floating || kind == Kind::boolean; }
  double number() const { return kind == Kind::floating ? f : kind == Kind::boolean ? double(b) : double(i); }
  bool truthy() const;
  const Value* find(const std::string& key) const;  // dict entry or nullptr
};

std::string to_str(const Value& v);   // Python str()
std::string repr(const Value& v);     // Python repr()
std::string to_json(const Value& v, int indent = -1, int level = 0);  // json.dumps(ensure_ascii=False)
bool equals(const Value& a, const Value& b);
const char* kind_name(const Value& v);

}  // namespace bitnet::jinja
