// Rendering a parsed chat template (include/bitnet/chat_template.h) with Python semantics for the values
// templates touch: truthiness, str()/repr(), ==, ordering, str methods, and jinja2's filters and tests as
// transformers configures them (tojson = json.dumps(ensure_ascii=False)).
#include <bitnet/chat_template.h>
#include <bitnet/error.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "tokenizer/jinja_ast.h"

namespace bitnet {

using jinja::Args;
using jinja::Body;
using jinja::Dict;
using jinja::Expr;
using jinja::List;
using jinja::Stmt;
using jinja::Value;
using Kind = jinja::Value::Kind;

namespace {

// ---- evaluation -------------------------------------------------------------------------------------------
[[noreturn]] void type_error(const std::string& what) { fail("[chat template] {}", what); }

bool is_py_space(uint32_t c) {
  return (c >= 9 && c <= 13) || (c >= 28 && c <= 32) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Code points of a UTF-8 string with their byte offsets (templates get valid UTF-8 from JSON / GGUF; a stray
// byte counts as one character).
std::vector<std::pair<size_t, uint32_t>> code_points(const std::string& s) {
  std::vector<std::pair<size_t, uint32_t>> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c >> 5 == 6 ? 2 : c >> 4 == 14 ? 3 : c >> 3 == 30 ? 4 : 1;
    if (i + n > s.size()) n = 1;
    uint32_t cp = n == 1 ? c : c & (0xFF >> (n + 1));
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.emplace_back(i, cp);
    i += n;
  }
  return out;
}

// Python str.strip / lstrip / rstrip: whitespace by default, else any character of `chars`.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  const auto cps = code_points(s);
  std::vector<uint32_t> set;
  const bool custom = chars && chars->kind == Kind::string;
  if (custom)
    for (auto& [off, cp] : code_points(chars->s)) set.push_back(cp);
  auto strip_it = [&](uint32_t cp) {
    return custom ? std::find(set.begin(), set.end(), cp) != set.end() : is_py_space(cp);
  };
  size_t b = 0, e = cps.size();
  if (left) while (b < e && strip_it(cps[b].second)) ++b;
  if (right) while (e > b && strip_it(cps[e - 1].second)) --e;
  const size_t from = b < cps.size() ? cps[b].first : s.size();
  const size_t to = e < cps.size() ? cps[e].first : s.size();
  return s.substr(from, to - from);
}

std::string ascii_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string ascii_upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string py_capitalize(const std::string& s) {
  std::string out = ascii_lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}
// jinja2's title filter: words start after runs of '-', whitespace, '(', '{', '[', '<'.
std::string jinja_title(const std::string& s) {
  std::string out;
  bool start = true;
  for (char c : s) {
    const bool sep = c == '-' || std::isspace(static_cast<unsigned char>(c)) || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) { out += c; start = true; continue; }
    out += static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
    start = false;
  }
  return out;
}
// Python str.title: a letter after a non-letter is upper-cased, other letters lower-cased.
std::string py_title(const std::string& s) {
  std::string out;
  bool prev_letter = false;
  for (char c : s) {
    const bool letter = std::isalpha(static_cast<unsigned char>(c));
    out += static_cast<char>(letter ? (prev_letter ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c))) : c);
    prev_letter = letter;
  }
  return out;
}
std::string py_replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  if (from.empty()) {  // Python inserts `to` between characters
    const auto cps = code_points(s);
    for (size_t k = 0; k <= cps.size(); ++k) {
      if (count < 0 || done < count) { out += to; ++done; }
      if (k < cps.size()) out += s.substr(cps[k].first, (k + 1 < cps.size() ? cps[k + 1].first : s.size()) - cps[k].first);
    }
    return out;
  }
  while (count < 0 || done < count) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos).append(to);
    pos = hit + from.size();
    ++done;
  }
  return out + s.substr(pos);
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Templates come from model files: results that would not fit an int64 are errors (jinja2 has big integers; a chat
// template has no use for them), never undefined behaviour.
constexpr uint64_t kMaxRepeatBytes = 16u << 20;

[[noreturn]] void overflow(std::string_view op) {
  throw Error(fmt::format("[chat template] integer overflow in '{}'", op));
}

// A number as an int64: integers and booleans as they are, floats truncated when they fit (else an error).
int64_t as_int64(const Value& v) {
  if (v.kind == Kind::boolean) return v.b ? 1 : 0;
  if (v.kind == Kind::integer) return v.i;
  const double d = v.number();
  if (!(d > -9.2233720368547758e18 && d < 9.2233720368547758e18))
    throw Error(fmt::format("[chat template] {} does not fit an integer", d));
  return static_cast<int64_t>(d);
}

Value integer_op(const std::string& op, int64_t a, int64_t b) {
  int64_t out = 0;
  if (op == "+") {
    if (__builtin_add_overflow(a, b, &out)) overflow(op);
    return Value::integer(out);
  }
  if (op == "-") {
    if (__builtin_sub_overflow(a, b, &out)) overflow(op);
    return Value::integer(out);
  }
  if (op == "*") {
    if (__builtin_mul_overflow(a, b, &out)) overflow(op);
    return Value::integer(out);
  }
  if ((op == "/" || op == "//" || op == "%") && b == 0)
    throw Error("[chat template] division by zero");
  if (op == "/") return Value::floating(static_cast<double>(a) / static_cast<double>(b));
  if (a == INT64_MIN && b == -1) overflow(op);  // the one quotient that does not fit
  if (op == "//") return Value::integer(floor_div(a, b));
  if (op == "%") return Value::integer(a - floor_div(a, b) * b);
  if (op == "**") {
    if (b < 0) return Value::floating(std::pow(static_cast<double>(a), static_cast<double>(b)));
    int64_t result = 1, base = a;
    for (int64_t e = b; e > 0; e >>= 1) {  // by squaring: at most 63 steps, each checked
      if ((e & 1) && __builtin_mul_overflow(result, base, &result)) overflow(op);
      if (e > 1 && __builtin_mul_overflow(base, base, &base)) overflow(op);  // a higher bit would need it
    }
    return Value::integer(result);
  }
  throw Error(fmt::format("[chat template] unknown operator {}", op));
}

const Value* arg(Args& a, size_t pos, const char* kw) {
  if (pos < a.pos.size()) return &a.pos[pos];
  for (auto& [k, v] : a.kw)
    if (k == kw) return &v;
  return nullptr;
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind) {
    case Kind::list: return *v.list;
    case Kind::dict: {
      std::vector<Value> keys;
      for (auto& [k, x] : *v.dict) keys.push_back(Value::string(k));
      return keys;
    }
    case Kind::string: {
      std::vector<Value> chars;
      const auto cps = code_points(v.s);
      for (size_t k = 0; k < cps.size(); ++k)
        chars.push_back(Value::string(v.s.substr(cps[k].first, (k + 1 < cps.size() ? cps[k + 1].first : v.s.size()) - cps[k].first)));
      return chars;
    }
    case Kind::undefined: return {};
    default: type_error(fmt::format("'{}' object is not iterable", jinja::kind_name(v)));
  }
}

int64_t length(const Value& v) {
  switch (v.kind) {
    case Kind::string: return static_cast<int64_t>(code_points(v.s).size());
    case Kind::list: return static_cast<int64_t>(v.list->size());
    case Kind::dict: return static_cast<int64_t>(v.dict->size());
    case Kind::undefined: return 0;
    default: type_error(fmt::format("object of type '{}' has no len()", jinja::kind_name(v)));
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.number() < b.number();
  if (a.kind == Kind::string && b.kind == Kind::string) return a.s < b.s;
  type_error(fmt::format("'<' not supported between '{}' and '{}'", jinja::kind_name(a), jinja::kind_name(b)));
}

class Renderer {
 public:
  explicit Renderer(std::map<std::string, Value> globals) { frames_.push_back(std::move(globals)); }

  void run(const Body& body, std::string& out) {
    for (const auto& st : body) {
      if (flow_ != Flow::normal) return;
      exec(*st, out);
    }
  }

 private:
  enum class Flow { normal, brk, cont } flow_ = Flow::normal;
  std::vector<std::map<std::string, Value>> frames_;

  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      const auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    return Value::undefined(name);
  }

  void exec(const Stmt& st, std::string& out) {
    switch (st.k) {
      case Stmt::text_: out += st.text; break;
      case Stmt::output: out += jinja::to_str(eval(*st.expr)); break;
      case Stmt::if_:
        for (const auto& [cond, body] : st.branches)
          if (eval(*cond).truthy()) return run(body, out);
        run(st.else_body, out);
        break;
      case Stmt::for_: exec_for(st, out); break;
      case Stmt::set: assign(st, eval(*st.expr)); break;
      case Stmt::set_block: {
        std::string captured;
        run(st.body, captured);
        assign(st, Value::string(captured));
        break;
      }
      case Stmt::break_: flow_ = Flow::brk; break;
      case Stmt::continue_: flow_ = Flow::cont; break;
    }
  }

  void assign(const Stmt& st, Value v) {
    if (st.attr.empty()) {
      frames_.back()[st.text] = std::move(v);
      return;
    }
    Value ns = lookup(st.text);
    if (ns.kind != Kind::dict) type_error(fmt::format("line {}: cannot assign attribute on '{}'", st.line, st.text));
    for (auto& [k, x] : *ns.dict)
      if (k == st.attr) { x = std::move(v); return; }
    ns.dict->emplace_back(st.attr, std::move(v));
  }

  void bind_targets(const Stmt& st, std::map<std::string, Value>& frame, const Value& item) {
    if (st.targets.size() == 1) {
      frame[st.targets[0]] = item;
      return;
    }
    const std::vector<Value> parts = iterate(item);
    if (parts.size() != st.targets.size())
      type_error(fmt::format("line {}: cannot unpack {} values into {} loop variables", st.line, parts.size(), st.targets.size()));
    for (size_t k = 0; k < parts.size(); ++k) frame[st.targets[k]] = parts[k];
  }

  void exec_for(const Stmt& st, std::string& out) {
    std::vector<Value> items = iterate(eval(*st.expr));
    if (st.filter) {
      std::vector<Value> kept;
      for (auto& it : items) {
        frames_.emplace_back();
        bind_targets(st, frames_.back(), it);
        const bool keep = eval(*st.filter).truthy();
        frames_.pop_back();
        if (keep) kept.push_back(std::move(it));
      }
      items = std::move(kept);
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      frames_.emplace_back();
      auto& frame = frames_.back();
      bind_targets(st, frame, items[k]);
      Dict loop = {{"index", Value::integer(k + 1)},        {"index0", Value::integer(k)},
                   {"revindex", Value::integer(n - k)},     {"revindex0", Value::integer(n - k - 1)},
                   {"first", Value::boolean(k == 0)},       {"last", Value::boolean(k == n - 1)},
                   {"length", Value::integer(n)},
                   {"previtem", k > 0 ? items[k - 1] : Value::undefined("previtem")},
                   {"nextitem", k + 1 < n ? items[k + 1] : Value::undefined("nextitem")}};
      frame["loop"] = Value::make_dict(std::move(loop));
      run(st.body, out);
      frames_.pop_back();
      const Flow f = flow_;
      flow_ = Flow::normal;
      if (f == Flow::brk) break;
    }
    if (n == 0) run(st.else_body, out);
  }

  Value eval(const Expr& e) {
    switch (e.k) {
      case Expr::literal: return e.value;
      case Expr::name: return lookup(e.str);
      case Expr::attr: return get_attr(eval(*e.a[0]), e.str);
      case Expr::item: return get_item(eval(*e.a[0]), eval(*e.a[1]));
      case Expr::slice: return slice(e);
      case Expr::call: {
        Value f = eval(*e.a[0]);
        if (f.kind != Kind::function)
          type_error(f.is_undefined() ? fmt::format("'{}' is undefined", f.name)
                                      : fmt::format("'{}' object is not callable", jinja::kind_name(f)));
        Args args = eval_args(e);
        return (*f.fn)(args);
      }
      case Expr::filter: {
        Value v = eval(*e.a[0]);
        Args args = eval_args(e);
        return apply_filter(e.str, v, args);
      }
      case Expr::test: {
        Value v = eval(*e.a[0]);
        Args args = eval_args(e);
        return Value::boolean(apply_test(e.str, v, args) != e.negated);
      }
      case Expr::not_: return Value::boolean(!eval(*e.a[0]).truthy());
      case Expr::neg: {
        Value v = eval(*e.a[0]);
        if (v.kind == Kind::integer || v.kind == Kind::boolean) {
          const int64_t x = v.kind == Kind::boolean ? int64_t{v.b} : v.i;  // the integer itself, not via double
          if (x == INT64_MIN) overflow("-");
          return Value::integer(-x);
        }
        if (v.kind == Kind::floating) return Value::floating(-v.f);
        type_error(fmt::format("bad operand type for unary -: '{}'", jinja::kind_name(v)));
      }
      case Expr::and_: {
        Value l = eval(*e.a[0]);
        return l.truthy() ? eval(*e.a[1]) : l;
      }
      case Expr::or_: {
        Value l = eval(*e.a[0]);
        return l.truthy() ? l : eval(*e.a[1]);
      }
      case Expr::cond:
        if (eval(*e.a[0]).truthy()) return eval(*e.a[1]);
        return e.a.size() > 2 ? eval(*e.a[2]) : Value::undefined("<else>");
      case Expr::list:
      case Expr::tuple: {
        List l;
        for (const auto& x : e.a) l.push_back(eval(*x));
        return Value::make_list(std::move(l));
      }
      case Expr::dict: {
        Dict d;
        for (size_t k = 0; k + 1 < e.a.size(); k += 2) {
          Value key = eval(*e.a[k]);
          if (key.kind != Kind::string) type_error("only string keys are supported in dict literals");
          Value val = eval(*e.a[k + 1]);
          bool replaced = false;
          for (auto& [dk, dv] : d)
            if (dk == key.s) { dv = val; replaced = true; }
          if (!replaced) d.emplace_back(key.s, val);
        }
        return Value::make_dict(std::move(d));
      }
      case Expr::binop: return binop(e);
    }
    return {};
  }

  Args eval_args(const Expr& e) {
    Args a;
    for (size_t k = 1; k < e.a.size(); ++k) a.pos.push_back(eval(*e.a[k]));
    if (e.k == Expr::call || e.k == Expr::filter || e.k == Expr::test) {
    }
    for (const auto& [k, x] : e.kw) a.kw.emplace_back(k, eval(*x));
    return a;
  }

  Value binop(const Expr& e) {
    const std::string& op = e.str;
    Value l = eval(*e.a[0]);
    Value r = eval(*e.a[1]);
    if (op == "~") return Value::string(jinja::to_str(l) + jinja::to_str(r));
    if (op == "==") return Value::boolean(jinja::equals(l, r));
    if (op == "!=") return Value::boolean(!jinja::equals(l, r));
    if (op == "<") return Value::boolean(less(l, r));
    if (op == ">") return Value::boolean(less(r, l));
    if (op == "<=") return Value::boolean(!less(r, l));
    if (op == ">=") return Value::boolean(!less(l, r));
    if (op == "in") {
      bool found = false;
      if (r.kind == Kind::string) {
        if (l.kind != Kind::string) type_error("'in <string>' requires a string on the left");
        found = r.s.find(l.s) != std::string::npos;
      } else if (r.kind == Kind::list) {
        for (const auto& x : *r.list) found |= jinja::equals(l, x);
      } else if (r.kind == Kind::dict) {
        found = l.kind == Kind::string && r.find(l.s) != nullptr;
      } else if (!r.is_undefined()) {
        type_error(fmt::format("argument of type '{}' is not iterable", jinja::kind_name(r)));
      }
      return Value::boolean(found != e.negated);
    }
    if (op == "+") {
      if (l.kind == Kind::string && r.kind == Kind::string) return Value::string(l.s + r.s);
      if (l.kind == Kind::list && r.kind == Kind::list) {
        List out = *l.list;
        out.insert(out.end(), r.list->begin(), r.list->end());
        return Value::make_list(std::move(out));
      }
    }
    if (op == "*" && l.kind == Kind::string && (r.kind == Kind::integer)) {
      // Templates come from model files: a repetition may not build more than kMaxRepeatBytes.
      if (r.i > 0 && l.s.size() * static_cast<uint64_t>(r.i) > kMaxRepeatBytes)
        type_error(fmt::format("string repetition would make {} x {} bytes (limit {})", l.s.size(), r.i, kMaxRepeatBytes));
      std::string out;
      for (int64_t k = 0; k < r.i; ++k) out += l.s;
      return Value::string(out);
    }
    if (!l.is_number() || !r.is_number())
      type_error(fmt::format("unsupported operand types for {}: '{}' and '{}'", op, jinja::kind_name(l), jinja::kind_name(r)));
    const bool ints = l.kind != Kind::floating && r.kind != Kind::floating;
    const double lf = l.number(), rf = r.number();
    if (ints) return integer_op(op, l.kind == Kind::boolean ? int64_t{l.b} : l.i, r.kind == Kind::boolean ? int64_t{r.b} : r.i);
    if (op == "+") return Value::floating(lf + rf);
    if (op == "-") return Value::floating(lf - rf);
    if (op == "*") return Value::floating(lf * rf);
    if ((op == "/" || op == "//" || op == "%") && rf == 0) type_error("division by zero");
    if (op == "/") return Value::floating(lf / rf);
    if (op == "//") return Value::floating(std::floor(lf / rf));
    if (op == "%") {
      double m = std::fmod(lf, rf);
      if (m != 0 && ((m < 0) != (rf < 0))) m += rf;
      return Value::floating(m);
    }
    if (op == "**") return Value::floating(std::pow(lf, rf));
    type_error(fmt::format("unknown operator {}", op));
  }

  Value slice(const Expr& e) {
    Value v = eval(*e.a[0]);
    auto opt = [&](size_t k) -> std::optional<int64_t> {
      if (!e.a[k]) return std::nullopt;
      Value x = eval(*e.a[k]);
      if (x.kind == Kind::none) return std::nullopt;
      if (x.kind != Kind::integer) type_error("slice indices must be integers");
      return x.i;
    };
    const auto start = opt(1), stop = opt(2), step_o = opt(3);
    const int64_t step = step_o.value_or(1);
    if (step == 0) type_error("slice step cannot be zero");
    std::vector<Value> items = v.kind == Kind::string ? iterate(v) : v.kind == Kind::list ? *v.list : std::vector<Value>{};
    if (v.kind != Kind::string && v.kind != Kind::list) type_error(fmt::format("'{}' object is not subscriptable", jinja::kind_name(v)));
    const auto n = static_cast<int64_t>(items.size());
    auto clamp = [&](std::optional<int64_t> x, int64_t dflt) {
      if (!x) return dflt;
      int64_t i = *x < 0 ? *x + n : *x;
      if (step > 0) return std::clamp<int64_t>(i, 0, n);
      return std::clamp<int64_t>(i, -1, n - 1);
    };
    const int64_t b = clamp(start, step > 0 ? 0 : n - 1), en = clamp(stop, step > 0 ? n : -1);
    List out;
    for (int64_t i = b; step > 0 ? i < en : i > en; i += step) out.push_back(items[i]);
    if (v.kind == Kind::string) {
      std::string s;
      for (auto& x : out) s += x.s;
      return Value::string(s);
    }
    return Value::make_list(std::move(out));
  }

  static Value get_item(const Value& obj, const Value& key) {
    if (obj.is_undefined()) type_error(fmt::format("'{}' is undefined", obj.name));
    if (obj.kind == Kind::dict && key.kind == Kind::string) {
      if (const Value* v = obj.find(key.s)) return *v;
      return Value::undefined(key.s);
    }
    if ((obj.kind == Kind::list || obj.kind == Kind::string) && (key.kind == Kind::integer || key.kind == Kind::boolean)) {
      const std::vector<Value> items = obj.kind == Kind::list ? *obj.list : iterate(obj);
      int64_t i = as_int64(key);
      if (i < 0) i += static_cast<int64_t>(items.size());
      if (i < 0 || i >= static_cast<int64_t>(items.size())) return Value::undefined("[index]");
      return items[i];
    }
    if (obj.kind == Kind::dict || obj.kind == Kind::list || obj.kind == Kind::string) return Value::undefined("[" + jinja::to_str(key) + "]");
    return get_attr(obj, jinja::to_str(key));
  }

  static Value get_attr(const Value& obj, const std::string& name);
  static Value apply_filter(const std::string& name, const Value& v, Args& a);
  static bool apply_test(const std::string& name, const Value& v, Args& a);
};

Value string_method(const Value& obj, const std::string& name) {
  const std::string s = obj.s;
  auto fn = [&](auto f) { return Value::function(f); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    return fn([s, l, r](Args& a) { return Value::string(py_strip(s, arg(a, 0, "chars"), l, r)); });
  }
  if (name == "upper") return fn([s](Args&) { return Value::string(ascii_upper(s)); });
  if (name == "lower") return fn([s](Args&) { return Value::string(ascii_lower(s)); });
  if (name == "title") return fn([s](Args&) { return Value::string(py_title(s)); });
  if (name == "capitalize") return fn([s](Args&) { return Value::string(py_capitalize(s)); });
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return fn([s, start](Args& a) {
      const Value* p = arg(a, 0, "prefix");
      if (!p) type_error("startswith/endswith needs an argument");
      std::vector<Value> cands = p->kind == Kind::list ? *p->list : std::vector<Value>{*p};
      for (const auto& c : cands) {
        if (c.kind != Kind::string) type_error("startswith/endswith takes strings");
        if (c.s.size() <= s.size() && (start ? s.compare(0, c.s.size(), c.s) == 0 : s.compare(s.size() - c.s.size(), c.s.size(), c.s) == 0))
          return Value::boolean(true);
      }
      return Value::boolean(false);
    });
  }
  if (name == "split") {
    return fn([s](Args& a) {
      const Value* sep = arg(a, 0, "sep");
      const Value* mx = arg(a, 1, "maxsplit");
      int64_t maxsplit = mx && mx->kind == Kind::integer ? mx->i : -1;
      List out;
      if (!sep || sep->kind == Kind::none) {  // runs of whitespace, no empty strings
        size_t i = 0;
        while (true) {
          while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
          if (i >= s.size()) break;
          if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
            std::string rest = s.substr(i);
            rest.erase(rest.find_last_not_of(" \t\r\n\f\v") + 1);
            out.push_back(Value::string(rest));
            break;
          }
          size_t j = i;
          while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
          out.push_back(Value::string(s.substr(i, j - i)));
          i = j;
        }
        return Value::make_list(std::move(out));
      }
      if (sep->kind != Kind::string || sep->s.empty()) type_error("split separator must be a non-empty string");
      size_t pos = 0;
      while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
        const size_t hit = s.find(sep->s, pos);
        if (hit == std::string::npos) break;
        out.push_back(Value::string(s.substr(pos, hit - pos)));
        pos = hit + sep->s.size();
      }
      out.push_back(Value::string(s.substr(pos)));
      return Value::make_list(std::move(out));
    });
  }
  if (name == "replace") {
    return fn([s](Args& a) {
      const Value* from = arg(a, 0, "old");
      const Value* to = arg(a, 1, "new");
      const Value* count = arg(a, 2, "count");
      if (!from || !to || from->kind != Kind::string || to->kind != Kind::string) type_error("replace takes two strings");
      return Value::string(py_replace(s, from->s, to->s, count && count->kind == Kind::integer ? count->i : -1));
    });
  }
  if (name == "join") {
    return fn([s](Args& a) {
      const Value* it = arg(a, 0, "iterable");
      if (!it) type_error("join needs an argument");
      std::string out;
      bool first = true;
      for (const auto& x : iterate(*it)) {
        if (x.kind != Kind::string) type_error("join: sequence item is not a string");
        if (!first) out += s;
        out += x.s;
        first = false;
      }
      return Value::string(out);
    });
  }
  if (name == "find") {
    return fn([s](Args& a) {
      const Value* sub = arg(a, 0, "sub");
      if (!sub || sub->kind != Kind::string) type_error("find takes a string");
      const size_t hit = s.find(sub->s);
      return Value::integer(hit == std::string::npos ? -1 : static_cast<int64_t>(code_points(s.substr(0, hit)).size()));
    });
  }
  return Value::undefined(name);
}

Value Renderer::get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) type_error(fmt::format("'{}' is undefined (looking up '.{}')", obj.name, name));
  if (obj.kind == Kind::string) return string_method(obj, name);
  if (obj.kind == Kind::dict) {
    auto d = obj;
    if (name == "items" || name == "keys" || name == "values") {
      return Value::function([d, name](Args&) {
        List out;
        for (const auto& [k, v] : *d.dict) {
          if (name == "items") out.push_back(Value::make_list({Value::string(k), v}));
          else out.push_back(name == "keys" ? Value::string(k) : v);
        }
        return Value::make_list(std::move(out));
      });
    }
    if (name == "get") {
      return Value::function([d](Args& a) {
        const Value* k = arg(a, 0, "key");
        if (!k || k->kind != Kind::string) type_error("get takes a string key");
        if (const Value* v = d.find(k->s)) return *v;
        const Value* dflt = arg(a, 1, "default");
        return dflt ? *dflt : Value::none();
      });
    }
    if (const Value* v = obj.find(name)) return *v;
    return Value::undefined(name);
  }
  return Value::undefined(name);
}

Value Renderer::apply_filter(const std::string& name, const Value& v, Args& a) {
  auto need_string = [&]() -> std::string {
    if (v.kind == Kind::undefined) return "";
    return jinja::to_str(v);
  };
  if (name == "trim") return Value::string(py_strip(need_string(), arg(a, 0, "chars"), true, true));
  if (name == "capitalize") return Value::string(py_capitalize(need_string()));
  if (name == "upper") return Value::string(ascii_upper(need_string()));
  if (name == "lower") return Value::string(ascii_lower(need_string()));
  if (name == "title") return Value::string(jinja_title(need_string()));
  if (name == "string") return Value::string(need_string());
  if (name == "safe") return v;
  if (name == "length" || name == "count") return Value::integer(length(v));
  if (name == "default" || name == "d") {
    const Value* dflt = arg(a, 0, "default_value");
    const Value* boolean = arg(a, 1, "boolean");
    const bool use = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
    return use ? (dflt ? *dflt : Value::string("")) : v;
  }
  if (name == "join") {
    const Value* sep = arg(a, 0, "d");
    const Value* attr = arg(a, 1, "attribute");
    std::string out;
    bool first = true;
    for (const auto& x : iterate(v)) {
      if (!first && sep) out += jinja::to_str(*sep);
      out += jinja::to_str(attr ? get_item(x, *attr) : x);
      first = false;
    }
    return Value::string(out);
  }
  if (name == "first" || name == "last") {
    const auto items = iterate(v);
    if (items.empty()) return Value::undefined(name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::make_list(iterate(v));
  if (name == "reverse") {
    if (v.kind == Kind::string) {
      auto items = iterate(v);
      std::string out;
      for (auto it = items.rbegin(); it != items.rend(); ++it) out += it->s;
      return Value::string(out);
    }
    auto items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "sort") {
    auto items = iterate(v);
    const Value* rev = arg(a, 0, "reverse");
    const Value* attr = arg(a, 2, "attribute");
    auto key = [&](const Value& x) { return attr ? get_item(x, *attr) : x; };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      Value kx = key(x), ky = key(y);
      if (kx.kind == Kind::string && ky.kind == Kind::string) { kx.s = ascii_lower(kx.s); ky.s = ascii_lower(ky.s); }
      return rev && rev->truthy() ? less(ky, kx) : less(kx, ky);
    });
    return Value::make_list(std::move(items));
  }
  if (name == "int") {
    if (v.is_number()) return Value::integer(as_int64(v));
    try { return Value::integer(std::stoll(need_string())); } catch (...) { return Value::integer(0); }
  }
  if (name == "float") {
    if (v.is_number()) return Value::floating(v.number());
    try { return Value::floating(std::stod(need_string())); } catch (...) { return Value::floating(0); }
  }
  if (name == "abs") {
    if (v.kind == Kind::floating) return Value::floating(std::fabs(v.f));
    if (v.is_number()) {
      const int64_t x = as_int64(v);
      if (x == INT64_MIN) overflow("abs");
      return Value::integer(x < 0 ? -x : x);
    }
    type_error("abs needs a number");
  }
  if (name == "replace") {
    const Value* from = arg(a, 0, "old");
    const Value* to = arg(a, 1, "new");
    const Value* count = arg(a, 2, "count");
    if (!from || !to) type_error("replace takes two arguments");
    return Value::string(py_replace(need_string(), jinja::to_str(*from), jinja::to_str(*to),
                                    count && count->kind == Kind::integer ? count->i : -1));
  }
  if (name == "tojson") {
    const Value* indent = arg(a, 0, "indent");
    return Value::string(jinja::to_json(v, indent && indent->kind == Kind::integer ? static_cast<int>(indent->i) : -1));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (v.kind != Kind::dict) type_error("items needs a mapping");
    List out;
    for (const auto& [k, x] : *v.dict) out.push_back(Value::make_list({Value::string(k), x}));
    return Value::make_list(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr") {
    const Value* attr = arg(a, 0, "attr");
    if (!attr || attr->kind != Kind::string) type_error("selectattr needs an attribute name");
    Args test_args;
    std::string test = "truthy";
    if (a.pos.size() > 1) test = jinja::to_str(a.pos[1]);
    for (size_t k = 2; k < a.pos.size(); ++k) test_args.pos.push_back(a.pos[k]);
    List out;
    for (const auto& x : iterate(v)) {
      const Value field = get_item(x, *attr);
      const bool pass = test == "truthy" ? field.truthy() : apply_test(test, field, test_args);
      if (pass == (name == "selectattr")) out.push_back(x);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "map") {
    const Value* attr = nullptr;
    for (auto& [k, x] : a.kw)
      if (k == "attribute") attr = &x;
    List out;
    for (const auto& x : iterate(v)) {
      if (attr) {
        out.push_back(get_item(x, *attr));
      } else if (!a.pos.empty()) {
        Args rest;
        rest.pos.assign(a.pos.begin() + 1, a.pos.end());
        out.push_back(apply_filter(jinja::to_str(a.pos[0]), x, rest));
      } else {
        type_error("map needs a filter name or attribute=");
      }
    }
    return Value::make_list(std::move(out));
  }
  type_error(fmt::format("filter '{}' is not supported", name));
}

bool Renderer::apply_test(const std::string& name, const Value& v, Args& a) {
  const Value* other = arg(a, 0, "other");
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.kind == Kind::none;
  if (name == "string") return v.kind == Kind::string;
  if (name == "number") return v.kind == Kind::integer || v.kind == Kind::floating;
  if (name == "integer") return v.kind == Kind::integer;
  if (name == "float") return v.kind == Kind::floating;
  if (name == "boolean") return v.kind == Kind::boolean;
  if (name == "true") return v.kind == Kind::boolean && v.b;
  if (name == "false") return v.kind == Kind::boolean && !v.b;
  if (name == "mapping") return v.kind == Kind::dict;
  if (name == "iterable") return v.kind == Kind::list || v.kind == Kind::dict || v.kind == Kind::string;
  if (name == "sequence") return v.kind == Kind::list || v.kind == Kind::dict || v.kind == Kind::string;
  if (name == "callable") return v.kind == Kind::function;
  if (name == "even" || name == "odd") {
    if (v.kind != Kind::integer) type_error("even/odd needs an integer");
    return (v.i % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    if (!other || v.kind != Kind::integer || other->kind != Kind::integer || other->i == 0) type_error("divisibleby needs integers");
    return v.i % other->i == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return other && jinja::equals(v, *other);
  if (name == "ne" || name == "!=") return !other || !jinja::equals(v, *other);
  if (name == "lt" || name == "lessthan") return other && less(v, *other);
  if (name == "gt" || name == "greaterthan") return other && less(*other, v);
  if (name == "in") {
    if (!other) return false;
    for (const auto& x : iterate(*other))
      if (jinja::equals(v, x)) return true;
    return other->kind == Kind::string && v.kind == Kind::string && other->s.find(v.s) != std::string::npos;
  }
  type_error(fmt::format("test '{}' is not supported", name));
}

}  // namespace

// ---- public API -------------------------------------------------------------------------------------------
struct ChatTemplate::Program {
  Body body;
};

ChatTemplate::ChatTemplate(std::string source) : source_(std::move(source)) {
  program_ = std::make_unique<Program>();
  program_->body = jinja::parse_template(source_);
}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

namespace {

// JSON (tool definitions and calls) -> template values, as Python's json.loads would give them.
Value from_json(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return j.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX) ? Value::integer(j.get<int64_t>()) : Value::floating(j.get<double>());
    case nlohmann::json::value_t::number_float: return Value::floating(j.get<double>());
    case nlohmann::json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      List l;
      for (const auto& x : j) l.push_back(from_json(x));
      return Value::make_list(std::move(l));
    }
    case nlohmann::json::value_t::object: {
      Dict d;
      for (const auto& [k, v] : j.items()) d.emplace_back(k, from_json(v));
      return Value::make_dict(std::move(d));
    }
    default: return Value::none();
  }
}

nlohmann::json parse_field(const std::string& text, const char* what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("[chat template] {} is not valid JSON: {}", what, e.what());
  }
}

// A call as templates expect it: {"id", "type", "function": {"name", "arguments": object}}, with the function's
// name and arguments also at the top (some templates read tool_call.name / tool_call.arguments directly).
Value tool_call_value(nlohmann::json call) {
  if (call.contains("function") && call["function"].is_object()) {
    nlohmann::json& f = call["function"];
    if (f.contains("arguments") && f["arguments"].is_string()) {
      const auto parsed = nlohmann::json::parse(f["arguments"].get<std::string>(), nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_discarded()) f["arguments"] = parsed;
    }
    if (!call.contains("name") && f.contains("name")) call["name"] = f["name"];
    if (!call.contains("arguments") && f.contains("arguments")) call["arguments"] = f["arguments"];
  }
  return from_json(call);
}

}  // namespace

bool ChatTemplate::renders_tools() const { return source_.find("tools") != std::string::npos; }

std::string ChatTemplate::render(std::span<const ChatMessage> messages, const ChatTemplateOptions& opt) const {
  List msgs;
  for (const auto& m : messages) {
    Dict d{{"role", Value::string(m.role)},
           {"content", m.content_is_null ? Value::none() : Value::string(m.content)}};
    if (!m.tool_calls_json.empty()) {
      const nlohmann::json calls = parse_field(m.tool_calls_json, "a message's tool_calls");
      List l;
      for (const auto& c : calls) l.push_back(tool_call_value(c));
      d.emplace_back("tool_calls", Value::make_list(std::move(l)));
    }
    if (!m.tool_call_id.empty()) d.emplace_back("tool_call_id", Value::string(m.tool_call_id));
    if (!m.name.empty()) d.emplace_back("name", Value::string(m.name));
    msgs.push_back(Value::make_dict(std::move(d)));
  }
  std::map<std::string, Value> g;
  g["messages"] = Value::make_list(std::move(msgs));
  g["bos_token"] = Value::string(opt.bos_token);
  g["eos_token"] = Value::string(opt.eos_token);
  g["add_generation_prompt"] = Value::boolean(opt.add_generation_prompt);
  // transformers passes tools=None and documents=None when there are none.
  g["tools"] = opt.tools_json.empty() ? Value::none() : from_json(parse_field(opt.tools_json, "tools"));
  g["documents"] = Value::none();
  g["raise_exception"] = Value::function([](Args& a) -> Value {
    fail("[chat template] raise_exception: {}", a.pos.empty() ? std::string() : jinja::to_str(a.pos[0]));
  });
  g["range"] = Value::function([](Args& a) {
    int64_t start = 0, stop = 0, step = 1;
    auto num = [&](size_t k) {
      if (a.pos[k].kind != Kind::integer) type_error("range takes integers");
      return a.pos[k].i;
    };
    if (a.pos.size() == 1) stop = num(0);
    else if (a.pos.size() >= 2) start = num(0), stop = num(1);
    if (a.pos.size() >= 3) step = num(2);
    if (step == 0) type_error("range step must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
      out.push_back(Value::integer(i));
      if (out.size() > 100000) type_error("range too large");
      if (__builtin_add_overflow(i, step, &i)) break;  // past INT64 limits: nothing further is in range
    }
    return Value::make_list(std::move(out));
  });
  auto kw_dict = [](Args& a) {
    Dict d;
    for (auto& [k, v] : a.kw) d.emplace_back(k, v);
    return Value::make_dict(std::move(d));
  };
  g["namespace"] = Value::function(kw_dict);
  g["dict"] = Value::function(kw_dict);
  std::string out;
  Renderer(std::move(g)).run(program_->body, out);
  return out;
}

}  // namespace bitnet
