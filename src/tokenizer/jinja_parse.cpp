// Jinja template source -> syntax tree (tokenizer/jinja_ast.h): the cutting into text and tags follows jinja2's
// lexer (trim_blocks, lstrip_blocks, whitespace-control markers, keep_trailing_newline = False), and
// expressions follow jinja2's precedence: or < and < not < comparisons/in < + - < ~ < * / // % < ** < unary,
// with filters and `is` tests binding to the operand before them.
#include <bitnet/error.h>

#include <algorithm>
#include <cctype>

#include "tokenizer/jinja_ast.h"

namespace bitnet::jinja {

namespace {

// ---- expression tokens -------------------------------------------------------------------------------------
struct Tok {
  enum Type { name, string, integer, floating, op, end } type = end;
  std::string text;
  int64_t i = 0;
  double f = 0;
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
      try {
        if (is_float) t.f = std::stod(num);
        else t.i = std::stoll(num);
      } catch (const std::exception&) {  // out of range (a template from a file may hold anything)
        syntax(line, fmt::format("number {} is out of range", num.substr(0, 40)));
      }
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
    const Nested guard(*this);
    ExprPtr e = or_expr();
    while (is_name("if")) {
      ++p_;
      auto c = std::make_unique<Expr>(Expr::cond);
      add(*c, or_expr());  // condition
      add(*c, std::move(e));
      if (accept_name("else")) add(*c, expression());
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
    add(*t, std::move(e));
    while (accept_op(",")) {
      if (at_end()) break;
      add(*t, expression());
    }
    return t;
  }

 private:
  std::vector<Tok> t_;
  size_t p_ = 0;
  int line_;

  // Templates come from model files: nesting is bounded (kMaxDepth) so that neither parsing, evaluation nor
  // freeing the tree can run out of stack, however the file nests (`not not not ...`, 5,000 brackets, a chain
  // of 100,000 `+`). Every child goes through add(), which keeps each node's height.
  static constexpr int kMaxDepth = 200;
  void check_depth(int depth) const {
    if (depth > kMaxDepth)
      syntax(line_, fmt::format("expression nests deeper than {} levels (limit for chat templates)", kMaxDepth));
  }
  void grow(Expr& parent, const Expr& child) const {
    check_depth(child.depth + 1);
    parent.depth = std::max(parent.depth, child.depth + 1);
  }
  void add(Expr& parent, ExprPtr child) {
    if (child) grow(parent, *child);  // null: an omitted slice bound
    parent.a.push_back(std::move(child));
  }
  void add_kw(Expr& parent, std::string name, ExprPtr child) {
    grow(parent, *child);
    parent.kw.emplace_back(std::move(name), std::move(child));
  }
  // Recursive descent (parentheses, `not`, unary minus) counts its own depth before recursing.
  int nesting_ = 0;
  struct Nested {
    Parser& p;
    explicit Nested(Parser& parser) : p(parser) { p.check_depth(++p.nesting_); }
    ~Nested() { --p.nesting_; }
  };

  static ExprPtr node(Expr::K k, std::string s = {}) {
    auto e = std::make_unique<Expr>(k);
    e->str = std::move(s);
    return e;
  }
  ExprPtr binary(Expr::K k, std::string op, ExprPtr l, ExprPtr r) {
    auto e = node(k, std::move(op));
    add(*e, std::move(l));
    add(*e, std::move(r));
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
    const Nested guard(*this);
    if (accept_name("not")) {
      auto e = node(Expr::not_);
      add(*e, not_expr());
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
    const Nested guard(*this);
    ExprPtr e;
    if (accept_op("-")) {
      e = node(Expr::neg);
      add(*e, unary_no_filter());
    } else if (accept_op("+")) {
      e = unary_no_filter();
    } else {
      e = postfix(primary());
    }
    return filters(std::move(e));
  }
  ExprPtr unary_no_filter() {
    const Nested guard(*this);
    if (accept_op("-")) {
      auto e = node(Expr::neg);
      add(*e, unary_no_filter());
      return e;
    }
    return postfix(primary());
  }

  void call_args(Expr& e) {  // after '('
    while (!accept_op(")")) {
      if (peek().type == Tok::name && is_op("=", 1)) {
        std::string k = t_[p_].text;
        p_ += 2;
        add_kw(e, std::move(k), expression());
      } else {
        add(e, expression());
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
            add(*t, std::move(e));
            while (accept_op(",")) {
              if (is_op(")")) break;
              add(*t, expression());
            }
            e = std::move(t);
          }
          expect_op(")");
          return e;
        }
        if (tok.text == "[") {
          auto e = node(Expr::list);
          while (!accept_op("]")) {
            add(*e, expression());
            if (!is_op("]")) expect_op(",");
          }
          return e;
        }
        if (tok.text == "{") {
          auto e = node(Expr::dict);
          while (!accept_op("}")) {
            add(*e, expression());
            expect_op(":");
            add(*e, expression());
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
        add(*a, std::move(e));
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
        add(*s, std::move(e));
        if (is_slice) {
          for (auto& p : parts) add(*s, std::move(p));  // may be null
        } else {
          if (!parts[0]) syntax(line_, "empty subscript");
          add(*s, std::move(parts[0]));
        }
        e = std::move(s);
      } else if (accept_op("(")) {
        auto c = node(Expr::call);
        add(*c, std::move(e));
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
        add(*f, std::move(e));
        if (accept_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        ++p_;
        auto t = node(Expr::test);
        t->negated = accept_name("not");
        t->str = expect_name();
        add(*t, std::move(e));
        if (accept_op("(")) {
          call_args(*t);
        } else if (peek().type != Tok::end && !is_name("and") && !is_name("or") && !is_name("else") &&
                   !is_name("if") && !is_op(")") && !is_op(",") && !is_op("]") && !is_op("}") && !is_op(":") &&
                   !is_op("|") && !is_op("==") && !is_op("!=")) {
          add(*t, primary());  // `is divisibleby 3`, `is sameas none`
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
  // Blocks ({% if %}, {% for %}, {% set %}...{% endset %}) nest at most kMaxBlockDepth deep: the tree of
  // statements is walked recursively when rendered and freed.
  static constexpr int kMaxBlockDepth = 200;
  int block_depth_ = 0;

  Body parse_body(std::initializer_list<const char*> ends, std::string& end, std::unique_ptr<Parser>* end_parser = nullptr) {
    struct Nested {
      int& depth;
      ~Nested() { --depth; }
    } nested{++block_depth_};
    if (block_depth_ > kMaxBlockDepth)
      syntax(pos_ > 0 ? segs_[pos_ - 1].line : 1,
             fmt::format("blocks nest deeper than {} levels (limit for chat templates)", kMaxBlockDepth));
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

}  // namespace

Body parse_template(const std::string& source) { return TreeBuilder(segment(source)).parse_all(); }

}  // namespace bitnet::jinja
