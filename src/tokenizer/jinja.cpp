// A Jinja subset interpreter for chat templates (include/bitnet/chat_template.h): the template is cut into text
// and tags with jinja2's whitespace rules (trim_blocks, lstrip_blocks, "-" / "+" markers, one trailing newline
// dropped), tags are parsed into a tree with jinja2's operator precedence, and the tree is evaluated with
// Python semantics for the values templates touch.
#include <bitnet/chat_template.h>
#include <bitnet/error.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "tokenizer/jinja_value.h"

namespace bitnet {

using jinja::Args;
using jinja::Dict;
using jinja::List;
using jinja::Value;
using Kind = jinja::Value::Kind;

namespace {

// ---- expression tokens -------------------------------------------------------------------------------------
struct Tok {
  enum Type { name, string, integer, floating, op, end } type = end;
  std::string text;
  int64_t i = 0;
  double f = 0;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Expr {
  enum K { literal, name, attr, item, slice, call, filter, test, not_, neg, binop, cond, list, dict, tuple, and_, or_ } k;
  explicit Expr(K kind) : k(kind) {}
  Value value;
  std::string str;  // name, attribute, filter/test name, operator
  std::vector<ExprPtr> a;  // operands / arguments (a[0] is the callee or the filtered value)
  std::vector<std::pair<std::string, ExprPtr>> kw;
  bool negated = false;  // `is not`, `not in`
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;
struct Stmt {
  enum K { text_, output, if_, for_, set, set_block, break_, continue_ } k;
  explicit Stmt(K kind = text_) : k(kind) {}
  int line = 0;
  std::string text;                 // text; set target name
  std::string attr;                 // set ns.attr
  ExprPtr expr;                     // output / set value / for iterable
  std::vector<std::pair<ExprPtr, Body>> branches;  // if / elif
  Body body, else_body;             // for, if-else, set block
  std::vector<std::string> targets; // for targets
  ExprPtr filter;                   // for ... if cond
};

struct Segment {
  enum K { text, var, block } k;
  std::string s;
  int line;
};

[[noreturn]] void syntax(int line, const std::string& what) { fail("[chat template] line {}: {}", line, what); }

// ---- cutting the source into text and tags (jinja2's lexer rules for whitespace) ---------------------------
std::vector<Segment> segment(std::string src) {
  if (!src.empty() && src.back() == '\n') src.pop_back();  // keep_trailing_newline = False
  std::vector<Segment> out;
  size_t pos = 0;
  int line = 1;
  auto count_lines = [&](size_t from, size_t to) {
    line += static_cast<int>(std::count(src.begin() + static_cast<long>(from), src.begin() + static_cast<long>(to), '\n'));
  };
  while (pos < src.size()) {
    size_t start = pos;
    while (true) {
      start = src.find('{', start);
      if (start == std::string::npos || start + 1 >= src.size()) { start = std::string::npos; break; }
      const char c = src[start + 1];
      if (c == '{' || c == '%' || c == '#') break;
      ++start;
    }
    std::string text = src.substr(pos, start == std::string::npos ? std::string::npos : start - pos);
    if (start == std::string::npos) {
      if (!text.empty()) out.push_back({Segment::text, text, line});
      break;
    }
    const char kind = src[start + 1];
    size_t inner = start + 2;
    const bool minus_left = inner < src.size() && src[inner] == '-';
    const bool plus_left = inner < src.size() && src[inner] == '+';
    if (minus_left || plus_left) ++inner;
    // Find the closing delimiter, skipping quoted strings inside expressions.
    const char close = kind == '{' ? '}' : kind;
    size_t end = inner;
    char quote = 0;
    for (; end + 1 < src.size(); ++end) {
      const char c = src[end];
      if (kind != '#' && quote) {
        if (c == '\\') ++end;
        else if (c == quote) quote = 0;
        continue;
      }
      if (kind != '#' && (c == '\'' || c == '"')) { quote = c; continue; }
      if (c == close && src[end + 1] == '}') break;
    }
    if (end + 1 >= src.size()) syntax(line, fmt::format("unclosed '{{{}'", kind));
    const bool minus_right = end > inner && src[end - 1] == '-';
    const std::string body = src.substr(inner, end - inner - (minus_right ? 1 : 0));
    const bool block_like = kind == '%' || kind == '#';
    if (minus_left) {
      text.erase(text.find_last_not_of(" \t\r\n\f\v") + 1);
    } else if (block_like && !plus_left) {
      // lstrip_blocks: spaces and tabs from the start of the line up to the tag.
      const size_t nl = text.find_last_of('\n');
      const size_t from = nl == std::string::npos ? 0 : nl + 1;
      // At a line start: a newline inside the text, or the text begins a line (template start, or right after a
      // newline that trim_blocks consumed).
      const bool line_start = nl != std::string::npos || pos == 0 || src[pos - 1] == '\n';
      if (line_start && text.find_first_not_of(" \t", from) == std::string::npos) text.erase(from);
    }
    if (!text.empty()) out.push_back({Segment::text, text, line});
    count_lines(pos, start);
    if (kind != '#') out.push_back({kind == '{' ? Segment::var : Segment::block, body, line});
    count_lines(start, end + 2);
    pos = end + 2;
    if (minus_right) {
      while (pos < src.size() && std::string_view(" \t\r\n\f\v").find(src[pos]) != std::string_view::npos) {
        if (src[pos] == '\n') ++line;
        ++pos;
      }
    } else if (block_like && pos < src.size() && src[pos] == '\n') {  // trim_blocks
      ++pos;
      ++line;
    }
  }
  return out;
}

// ---- expression lexer and parser ---------------------------------------------------------------------------
std::vector<Tok> lex(const std::string& s, int line) {
  std::vector<Tok> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) { ++i; continue; }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Tok::name, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
        is_float = true;
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      std::string num = s.substr(i, j - i);
      num.erase(std::remove(num.begin(), num.end(), '_'), num.end());
      Tok t{is_float ? Tok::floating : Tok::integer, num};
      if (is_float) t.f = std::stod(num);
      else t.i = std::stoll(num);
      out.push_back(t);
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string v;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          const char e = s[++j];
          switch (e) {
            case 'n': v += '\n'; break;
            case 't': v += '\t'; break;
            case 'r': v += '\r'; break;
            case '\\': v += '\\'; break;
            case '\'': v += '\''; break;
            case '"': v += '"'; break;
            default: v += '\\'; v += e;
          }
        } else {
          v += s[j];
        }
      }
      if (j >= s.size()) syntax(line, "unterminated string literal");
      out.push_back({Tok::string, v});
      i = j + 1;
    } else {
      static const char* kOps[] = {"==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<", ">",
                                   "=",  "(",  ")",  "[",  "]",  "{", "}", ".", ",", ":", "|"};
      bool found = false;
      for (const char* op : kOps) {
        const size_t n = std::char_traits<char>::length(op);
        if (s.compare(i, n, op) == 0) {
          out.push_back({Tok::op, op});
          i += n;
          found = true;
          break;
        }
      }
      if (!found) syntax(line, fmt::format("unexpected character '{}'", c));
    }
  }
  out.push_back({Tok::end, ""});
  return out;
}

class Parser {
 public:
  Parser(std::vector<Tok> toks, int line) : t_(std::move(toks)), line_(line) {}

  const Tok& peek(size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  bool at_end() const { return peek().type == Tok::end; }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).type == Tok::op && peek(k).text == op; }
  bool is_name(const char* n, size_t k = 0) const { return peek(k).type == Tok::name && peek(k).text == n; }
  bool accept_op(const char* op) { if (is_op(op)) { ++p_; return true; } return false; }
  bool accept_name(const char* n) { if (is_name(n)) { ++p_; return true; } return false; }
  void expect_op(const char* op) {
    if (!accept_op(op)) syntax(line_, fmt::format("expected '{}', got '{}'", op, peek().text));
  }
  std::string expect_name() {
    if (peek().type != Tok::name) syntax(line_, fmt::format("expected a name, got '{}'", peek().text));
    return t_[p_++].text;
  }
  void expect_end() {
    if (!at_end()) syntax(line_, fmt::format("unexpected '{}'", peek().text));
  }

  ExprPtr expression() {  // conditional expression: a if c else b
    ExprPtr e = or_expr();
    while (is_name("if")) {
      ++p_;
      auto c = std::make_unique<Expr>(Expr::cond);
      c->a.push_back(or_expr());  // condition
      c->a.push_back(std::move(e));
      if (accept_name("else")) c->a.push_back(expression());
      e = std::move(c);
    }
    return e;
  }

  // For-loop iterables and filters: no trailing `if` (that is the loop filter).
  ExprPtr expression_no_cond() { return or_expr(); }

  // A comma-separated list without brackets is a tuple (for `{% set a, b = ... %}` values and for targets).
  ExprPtr tuple_or_expression() {
    ExprPtr e = expression();
    if (!is_op(",")) return e;
    auto t = std::make_unique<Expr>(Expr::tuple);
    t->a.push_back(std::move(e));
    while (accept_op(",")) {
      if (at_end()) break;
      t->a.push_back(expression());
    }
    return t;
  }

 private:
  std::vector<Tok> t_;
  size_t p_ = 0;
  int line_;

  static ExprPtr node(Expr::K k, std::string s = {}) {
    auto e = std::make_unique<Expr>(k);
    e->str = std::move(s);
    return e;
  }
  ExprPtr binary(Expr::K k, std::string op, ExprPtr l, ExprPtr r) {
    auto e = node(k, std::move(op));
    e->a.push_back(std::move(l));
    e->a.push_back(std::move(r));
    return e;
  }

  ExprPtr or_expr() {
    ExprPtr e = and_expr();
    while (accept_name("or")) e = binary(Expr::or_, "or", std::move(e), and_expr());
    return e;
  }
  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (accept_name("and")) e = binary(Expr::and_, "and", std::move(e), not_expr());
    return e;
  }
  ExprPtr not_expr() {
    if (accept_name("not")) {
      auto e = node(Expr::not_);
      e->a.push_back(not_expr());
      return e;
    }
    return compare();
  }
  ExprPtr compare() {
    ExprPtr e = math1();
    while (true) {
      std::string op;
      bool neg = false;
      if (peek().type == Tok::op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                     peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        op = t_[p_++].text;
      } else if (is_name("in")) {
        ++p_;
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        p_ += 2;
        op = "in";
        neg = true;
      } else {
        return e;
      }
      e = binary(Expr::binop, op, std::move(e), math1());
      e->negated = neg;
    }
  }
  ExprPtr math1() {
    ExprPtr e = concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = t_[p_++].text;
      e = binary(Expr::binop, op, std::move(e), concat());
    }
    return e;
  }
  ExprPtr concat() {
    ExprPtr e = math2();
    while (accept_op("~")) e = binary(Expr::binop, "~", std::move(e), math2());
    return e;
  }
  ExprPtr math2() {
    ExprPtr e = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = t_[p_++].text;
      e = binary(Expr::binop, op, std::move(e), power());
    }
    return e;
  }
  ExprPtr power() {
    ExprPtr e = unary();
    while (accept_op("**")) e = binary(Expr::binop, "**", std::move(e), unary());
    return e;
  }
  ExprPtr unary() {
    ExprPtr e;
    if (accept_op("-")) {
      e = node(Expr::neg);
      e->a.push_back(unary_no_filter());
    } else if (accept_op("+")) {
      e = unary_no_filter();
    } else {
      e = postfix(primary());
    }
    return filters(std::move(e));
  }
  ExprPtr unary_no_filter() {
    if (accept_op("-")) {
      auto e = node(Expr::neg);
      e->a.push_back(unary_no_filter());
      return e;
    }
    return postfix(primary());
  }

  void call_args(Expr& e) {  // after '('
    while (!accept_op(")")) {
      if (peek().type == Tok::name && is_op("=", 1)) {
        std::string k = t_[p_].text;
        p_ += 2;
        e.kw.emplace_back(std::move(k), expression());
      } else {
        e.a.push_back(expression());
      }
      if (!is_op(")")) expect_op(",");
    }
  }

  ExprPtr primary() {
    const Tok tok = peek();
    ++p_;
    switch (tok.type) {
      case Tok::string: {
        auto e = node(Expr::literal);
        std::string s = tok.text;
        while (peek().type == Tok::string) s += t_[p_++].text;  // adjacent literals concatenate
        e->value = Value::string(s);
        return e;
      }
      case Tok::integer: { auto e = node(Expr::literal); e->value = Value::integer(tok.i); return e; }
      case Tok::floating: { auto e = node(Expr::literal); e->value = Value::floating(tok.f); return e; }
      case Tok::name: {
        auto e = node(Expr::literal);
        if (tok.text == "true" || tok.text == "True") e->value = Value::boolean(true);
        else if (tok.text == "false" || tok.text == "False") e->value = Value::boolean(false);
        else if (tok.text == "none" || tok.text == "None") e->value = Value::none();
        else e = node(Expr::name, tok.text);
        return e;
      }
      case Tok::op:
        if (tok.text == "(") {
          if (accept_op(")")) return node(Expr::tuple);
          ExprPtr e = expression();
          if (is_op(",")) {
            auto t = node(Expr::tuple);
            t->a.push_back(std::move(e));
            while (accept_op(",")) {
              if (is_op(")")) break;
              t->a.push_back(expression());
            }
            e = std::move(t);
          }
          expect_op(")");
          return e;
        }
        if (tok.text == "[") {
          auto e = node(Expr::list);
          while (!accept_op("]")) {
            e->a.push_back(expression());
            if (!is_op("]")) expect_op(",");
          }
          return e;
        }
        if (tok.text == "{") {
          auto e = node(Expr::dict);
          while (!accept_op("}")) {
            e->a.push_back(expression());
            expect_op(":");
            e->a.push_back(expression());
            if (!is_op("}")) expect_op(",");
          }
          return e;
        }
        break;
      case Tok::end: break;
    }
    syntax(line_, fmt::format("unexpected '{}' in expression", tok.text));
  }

  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (accept_op(".")) {
        auto a = node(Expr::attr, expect_name());
        a->a.push_back(std::move(e));
        e = std::move(a);
      } else if (accept_op("[")) {
        // item or slice [a:b:c]
        ExprPtr parts[3];
        int n = 0;
        bool is_slice = false;
        while (true) {
          if (!is_op(":") && !is_op("]")) parts[n] = expression();
          if (accept_op(":")) {
            is_slice = true;
            if (++n > 2) syntax(line_, "too many ':' in a slice");
            continue;
          }
          expect_op("]");
          break;
        }
        auto s = node(is_slice ? Expr::slice : Expr::item);
        s->a.push_back(std::move(e));
        if (is_slice) {
          for (auto& p : parts) s->a.push_back(std::move(p));  // may be null
        } else {
          if (!parts[0]) syntax(line_, "empty subscript");
          s->a.push_back(std::move(parts[0]));
        }
        e = std::move(s);
      } else if (accept_op("(")) {
        auto c = node(Expr::call);
        c->a.push_back(std::move(e));
        call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr filters(ExprPtr e) {
    while (true) {
      if (accept_op("|")) {
        auto f = node(Expr::filter, expect_name());
        f->a.push_back(std::move(e));
        if (accept_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        ++p_;
        auto t = node(Expr::test);
        t->negated = accept_name("not");
        t->str = expect_name();
        t->a.push_back(std::move(e));
        if (accept_op("(")) {
          call_args(*t);
        } else if (peek().type != Tok::end && !is_name("and") && !is_name("or") && !is_name("else") &&
                   !is_name("if") && !is_op(")") && !is_op(",") && !is_op("]") && !is_op("}") && !is_op(":") &&
                   !is_op("|") && !is_op("==") && !is_op("!=")) {
          t->a.push_back(primary());  // `is divisibleby 3`, `is sameas none`
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }
};

// ---- statements -------------------------------------------------------------------------------------------
class TreeBuilder {
 public:
  explicit TreeBuilder(std::vector<Segment> segs) : segs_(std::move(segs)) {}

  Body parse_all() {
    std::string end;
    Body b = parse_body({}, end);
    if (!end.empty()) syntax(segs_[pos_ - 1].line, fmt::format("unexpected '{{% {} %}}'", end));
    return b;
  }

 private:
  std::vector<Segment> segs_;
  size_t pos_ = 0;

  static std::string first_word(const std::string& s) {
    size_t i = s.find_first_not_of(" \t\r\n");
    if (i == std::string::npos) return {};
    size_t j = i;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
    return s.substr(i, j - i);
  }

  // Parses statements until one of `ends` (returned in `end`, with the tag's parser positioned after the word).
  Body parse_body(std::initializer_list<const char*> ends, std::string& end, std::unique_ptr<Parser>* end_parser = nullptr) {
    Body body;
    while (pos_ < segs_.size()) {
      const Segment& seg = segs_[pos_++];
      if (seg.k == Segment::text) {
        auto st = std::make_unique<Stmt>(Stmt::text_);
        st->text = seg.s;
        body.push_back(std::move(st));
        continue;
      }
      auto parser = std::make_unique<Parser>(lex(seg.s, seg.line), seg.line);
      if (seg.k == Segment::var) {
        auto st = std::make_unique<Stmt>(Stmt::output);
        st->line = seg.line;
        st->expr = parser->tuple_or_expression();
        parser->expect_end();
        body.push_back(std::move(st));
        continue;
      }
      const std::string word = first_word(seg.s);
      for (const char* e : ends)
        if (word == e) {
          end = word;
          parser->expect_name();
          if (end_parser) *end_parser = std::move(parser);
          else parser->expect_end();
          return body;
        }
      parser->expect_name();
      body.push_back(statement(word, *parser, seg.line));
    }
    end.clear();
    if (ends.size()) syntax(segs_.empty() ? 1 : segs_.back().line, fmt::format("missing '{{% {} %}}'", *ends.begin()));
    return body;
  }

  std::unique_ptr<Stmt> statement(const std::string& word, Parser& p, int line) {
    auto st = std::make_unique<Stmt>();
    st->line = line;
    if (word == "if") {
      st->k = Stmt::if_;
      ExprPtr cond = p.expression();
      p.expect_end();
      while (true) {
        std::string end;
        std::unique_ptr<Parser> ep;
        Body b = parse_body({"elif", "else", "endif"}, end, &ep);
        st->branches.emplace_back(std::move(cond), std::move(b));
        if (end == "elif") {
          cond = ep->expression();
          ep->expect_end();
          continue;
        }
        ep->expect_end();
        if (end == "else") {
          st->else_body = parse_body({"endif"}, end);
        }
        break;
      }
    } else if (word == "for") {
      st->k = Stmt::for_;
      do st->targets.push_back(p.expect_name());
      while (p.accept_op(","));
      if (!p.accept_name("in")) syntax(line, "expected 'in' in for");
      st->expr = p.expression_no_cond();
      if (p.accept_name("if")) st->filter = p.expression_no_cond();
      if (p.accept_name("recursive")) syntax(line, "recursive loops are not supported");
      p.expect_end();
      std::string end;
      st->body = parse_body({"else", "endfor"}, end);
      if (end == "else") st->else_body = parse_body({"endfor"}, end);
    } else if (word == "set") {
      st->k = Stmt::set;
      st->text = p.expect_name();
      if (p.accept_op(".")) st->attr = p.expect_name();
      if (p.is_op(",")) syntax(line, "tuple assignment in set is not supported");
      if (p.accept_op("=")) {
        st->expr = p.tuple_or_expression();
        p.expect_end();
      } else {
        p.expect_end();
        st->k = Stmt::set_block;
        std::string end;
        st->body = parse_body({"endset"}, end);
      }
    } else if (word == "break" || word == "continue") {
      st->k = word == "break" ? Stmt::break_ : Stmt::continue_;
      p.expect_end();
    } else if (word == "generation" || word == "endgeneration") {
      // transformers' assistant-mask marker: renders nothing.
      st->k = Stmt::text_;
      p.expect_end();
    } else {
      syntax(line, fmt::format("'{{% {} %}}' is not supported", word));
    }
    return st;
  }
};


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
        if (v.kind == Kind::integer || v.kind == Kind::boolean) return Value::integer(-static_cast<int64_t>(v.number()));
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
      std::string out;
      for (int64_t k = 0; k < r.i; ++k) out += l.s;
      return Value::string(out);
    }
    if (!l.is_number() || !r.is_number())
      type_error(fmt::format("unsupported operand types for {}: '{}' and '{}'", op, jinja::kind_name(l), jinja::kind_name(r)));
    const bool ints = l.kind != Kind::floating && r.kind != Kind::floating;
    const int64_t li = static_cast<int64_t>(l.number()), ri = static_cast<int64_t>(r.number());
    const double lf = l.number(), rf = r.number();
    if (op == "+") return ints ? Value::integer(li + ri) : Value::floating(lf + rf);
    if (op == "-") return ints ? Value::integer(li - ri) : Value::floating(lf - rf);
    if (op == "*") return ints ? Value::integer(li * ri) : Value::floating(lf * rf);
    if ((op == "/" || op == "//" || op == "%") && rf == 0) type_error("division by zero");
    if (op == "/") return Value::floating(lf / rf);
    if (op == "//") return ints ? Value::integer(floor_div(li, ri)) : Value::floating(std::floor(lf / rf));
    if (op == "%") {
      if (ints) return Value::integer(li - floor_div(li, ri) * ri);
      double m = std::fmod(lf, rf);
      if (m != 0 && ((m < 0) != (rf < 0))) m += rf;
      return Value::floating(m);
    }
    if (op == "**") {
      if (ints && ri >= 0) {
        int64_t out = 1;
        for (int64_t k = 0; k < ri; ++k) out *= li;
        return Value::integer(out);
      }
      return Value::floating(std::pow(lf, rf));
    }
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
      int64_t i = static_cast<int64_t>(key.number());
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
        out += (first ? "" : s) + x.s;
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
      out += (first ? "" : sep ? jinja::to_str(*sep) : "") + jinja::to_str(attr ? get_item(x, *attr) : x);
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
    if (v.is_number()) return Value::integer(static_cast<int64_t>(v.number()));
    try { return Value::integer(std::stoll(need_string())); } catch (...) { return Value::integer(0); }
  }
  if (name == "float") {
    if (v.is_number()) return Value::floating(v.number());
    try { return Value::floating(std::stod(need_string())); } catch (...) { return Value::floating(0); }
  }
  if (name == "abs") {
    if (v.kind == Kind::floating) return Value::floating(std::fabs(v.f));
    if (v.is_number()) return Value::integer(std::llabs(static_cast<int64_t>(v.number())));
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
  program_->body = TreeBuilder(segment(source_)).parse_all();
}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(std::span<const ChatMessage> messages, const ChatTemplateOptions& opt) const {
  List msgs;
  for (const auto& m : messages)
    msgs.push_back(Value::make_dict({{"role", Value::string(m.role)}, {"content", Value::string(m.content)}}));
  std::map<std::string, Value> g;
  g["messages"] = Value::make_list(std::move(msgs));
  g["bos_token"] = Value::string(opt.bos_token);
  g["eos_token"] = Value::string(opt.eos_token);
  g["add_generation_prompt"] = Value::boolean(opt.add_generation_prompt);
  g["tools"] = Value::none();      // transformers passes tools=None and documents=None when there are none
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
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      out.push_back(Value::integer(i));
      if (out.size() > 100000) type_error("range too large");
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
