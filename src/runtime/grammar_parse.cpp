// GBNF text -> grammar::Rules (see include/bitnet/grammar.h for the language). Repetitions and ( ) groups become
// generated rules, as llama.cpp's parser does, so matching only ever meets character sets and rule references.
#include <bitnet/error.h>
#include <bitnet/grammar.h>
#include <fmt/format.h>

#include <map>

#include "runtime/grammar_rules.h"

namespace bitnet {

namespace {

using grammar::Element;
using grammar::Kind;
using grammar::Rules;
using Sequence = std::vector<Element>;
using Alternatives = std::vector<Sequence>;

// Bounds that keep a hostile grammar from taking unbounded memory or time.
constexpr size_t kMaxElements = 1 << 20;
constexpr uint32_t kMaxRepeat = 10000;
constexpr int kMaxNesting = 256;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : s_(text), source_(source) {}

  std::shared_ptr<const Rules> parse() {
    skip_space(true);
    while (pos_ < s_.size()) {
      parse_rule();
      skip_space(true);
    }
    const auto root = ids_.find("root");
    if (root == ids_.end() || !defined_[root->second]) fail_at(s_.size(), "the grammar has no 'root' rule");
    for (size_t id = 0; id < bodies_.size(); ++id)
      if (!defined_[id]) fail_at(first_use_[id], fmt::format("rule '{}' is used but never defined", names_[id]));
    auto rules = std::make_shared<Rules>();
    rules->root = root->second;
    rules->ranges = std::move(ranges_);
    rules->rule_names = names_;
    for (const Alternatives& alts : bodies_) {
      rules->rule_start.push_back(static_cast<uint32_t>(rules->elements.size()));
      for (size_t a = 0; a < alts.size(); ++a) {
        rules->elements.insert(rules->elements.end(), alts[a].begin(), alts[a].end());
        rules->elements.push_back({a + 1 < alts.size() ? Kind::end_alt : Kind::end_rule});
      }
    }
    check_left_recursion(*rules);
    return rules;
  }

 private:
  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw Error(fmt::format("[grammar] {}:{}:{}: {}", source_, line, col, what));
  }
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }

  void skip_space(bool newline_ok) {
    while (!at_end()) {
      const char c = s_[pos_];
      if (c == '#') {
        while (!at_end() && s_[pos_] != '\n' && s_[pos_] != '\r') ++pos_;
      } else if (c == ' ' || c == '\t') {
        ++pos_;
      } else if ((c == '\n' || c == '\r') && newline_ok) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(s_[pos_])) ++pos_;
    if (pos_ == start) fail(fmt::format("expected a rule name, found {}", describe_here()));
    return std::string(s_.substr(start, pos_ - start));
  }

  std::string describe_here() const {
    if (at_end()) return "the end of the grammar";
    const char c = s_[pos_];
    if (c == '\n' || c == '\r') return "the end of the line";
    return fmt::format("'{}'", c);
  }

  uint32_t rule_id(const std::string& name, size_t used_at) {
    const auto [it, fresh] = ids_.try_emplace(name, static_cast<uint32_t>(names_.size()));
    if (fresh) {
      names_.push_back(name);
      bodies_.emplace_back();
      defined_.push_back(false);
      first_use_.push_back(used_at);
    }
    return it->second;
  }

  // Every rule body counts toward one bound, so that many rules below the per-sequence check cannot add up to an
  // unbounded grammar.
  void count(const Alternatives& body) {
    for (const Sequence& s : body) total_ += s.size() + 1;
    if (total_ > kMaxElements) fail(fmt::format("the grammar has more than {} elements", kMaxElements));
  }

  uint32_t new_rule(const std::string& base, Alternatives body) {
    count(body);
    std::string name;
    do name = fmt::format("{}_{}", base, ++generated_); while (ids_.count(name));
    const uint32_t id = rule_id(name, pos_);
    bodies_[id] = std::move(body);
    defined_[id] = true;
    return id;
  }

  void parse_rule() {
    const size_t start = pos_;
    const std::string name = parse_name();
    skip_space(false);
    if (s_.substr(pos_, 3) != "::=") fail(fmt::format("expected '::=' after the rule name '{}'", name));
    pos_ += 3;
    skip_space(true);
    const uint32_t id = rule_id(name, start);
    if (defined_[id]) fail_at(start, fmt::format("rule '{}' is defined twice", name));
    defined_[id] = true;  // before the body: a rule may refer to itself
    bodies_[id] = parse_alternates(name, 0);
    count(bodies_[id]);
    skip_space(false);
    if (!at_end() && peek() != '\n' && peek() != '\r')
      fail(fmt::format("expected the end of rule '{}', found {}", name, describe_here()));
  }

  Alternatives parse_alternates(const std::string& rule, int depth) {
    if (depth > kMaxNesting) fail(fmt::format("groups nest deeper than {} levels", kMaxNesting));
    Alternatives alts;
    alts.push_back(parse_sequence(rule, depth));
    while (peek() == '|') {
      ++pos_;
      skip_space(true);
      alts.push_back(parse_sequence(rule, depth));
    }
    return alts;
  }

  // Reads one character of a literal or class: a UTF-8 sequence or an escape.
  uint32_t parse_char() {
    if (at_end()) fail("unexpected end of the grammar inside a literal");
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (c == '\\') {
      ++pos_;
      if (at_end()) fail("unexpected end of the grammar after '\\'");
      const char e = s_[pos_++];
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '^': case '\'': return static_cast<uint32_t>(e);
        case 'x': return parse_hex(2);
        case 'u': return parse_hex(4);
        case 'U': return parse_hex(8);
        default: --pos_; fail(fmt::format("unknown escape '\\{}'", e));
      }
    }
    const int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || pos_ + static_cast<size_t>(len) > s_.size()) fail("the grammar is not valid UTF-8");
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (int i = 1; i < len; ++i) {
      const auto b = static_cast<unsigned char>(s_[pos_ + static_cast<size_t>(i)]);
      if ((b & 0xC0) != 0x80) fail("the grammar is not valid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    pos_ += static_cast<size_t>(len);
    return cp;
  }

  uint32_t parse_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char h = peek();
      const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (d < 0) fail(fmt::format("expected {} hexadecimal digits in an escape", digits));
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > 0x10FFFF) fail(fmt::format("escape U+{:X} is past the last Unicode code point", v));
    return v;
  }

  Element char_set(std::vector<std::pair<uint32_t, uint32_t>> set, bool negated) {
    Element e{Kind::chars, negated, static_cast<uint32_t>(ranges_.size()), static_cast<uint32_t>(set.size())};
    ranges_.insert(ranges_.end(), set.begin(), set.end());
    return e;
  }

  Sequence parse_sequence(const std::string& rule, int depth) {
    Sequence seq;
    const bool nested = depth > 0;
    while (true) {
      const size_t item_start = seq.size();
      const char c = peek();
      if (c == '"') {
        const size_t open = pos_++;
        while (peek() != '"') {
          if (at_end()) fail_at(open, "this string literal is never closed");
          const uint32_t cp = parse_char();
          seq.push_back(char_set({{cp, cp}}, false));
        }
        ++pos_;
      } else if (c == '[') {
        const size_t open = pos_++;
        const bool negated = peek() == '^';
        if (negated) ++pos_;
        std::vector<std::pair<uint32_t, uint32_t>> set;
        while (peek() != ']') {
          if (at_end()) fail_at(open, "this character class is never closed");
          const uint32_t lo = parse_char();
          uint32_t hi = lo;
          if (peek() == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] != ']') {
            ++pos_;
            hi = parse_char();
            if (hi < lo) fail(fmt::format("character range U+{:04X}-U+{:04X} is reversed", lo, hi));
          }
          set.emplace_back(lo, hi);
        }
        ++pos_;
        if (set.empty() && !negated) fail("an empty character class [] matches nothing");
        seq.push_back(char_set(std::move(set), negated));
      } else if (c == '.') {
        ++pos_;
        seq.push_back(char_set({}, true));
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        Alternatives inner = parse_alternates(rule, depth + 1);
        if (peek() != ')') fail(fmt::format("expected ')' to close a group, found {}", describe_here()));
        ++pos_;
        seq.push_back({Kind::rule_ref, false, new_rule(rule, std::move(inner)), 0});
      } else if (c == '<' || c == '!') {
        fail("token references (<[id]>, <token>, !) are not supported; write the token's text as a literal");
      } else if (is_name_char(c)) {
        const size_t at = pos_;
        seq.push_back({Kind::rule_ref, false, rule_id(parse_name(), at), 0});
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        fail(fmt::format("'{}' follows nothing it could repeat", c));
      } else {
        break;  // the sequence ends: '|', ')', the end of the line or of the grammar
      }
      skip_space(nested);
      if (const char op = peek(); op == '*' || op == '+' || op == '?' || op == '{') {
        if (item_start == seq.size()) fail(fmt::format("'{}' follows nothing it could repeat", op));
        repeat(rule, seq, item_start);
        skip_space(nested);
      }
      if (ranges_.size() + seq.size() > kMaxElements) fail(fmt::format("the grammar has more than {} elements", kMaxElements));
    }
    return seq;
  }

  uint32_t parse_count() {
    const size_t start = pos_;
    uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<uint64_t>(peek() - '0');
      if (v > kMaxRepeat) fail(fmt::format("a repetition count may be at most {}", kMaxRepeat));
      ++pos_;
    }
    if (pos_ == start) fail("expected a number in {m,n}");
    return static_cast<uint32_t>(v);
  }

  // Applies the repetition operator at pos_ to seq[item_start..] (one item: a literal string counts as one).
  void repeat(const std::string& rule, Sequence& seq, size_t item_start) {
    Element item = seq[item_start];
    if (seq.size() - item_start > 1) {
      Sequence body(seq.begin() + static_cast<std::ptrdiff_t>(item_start), seq.end());
      item = {Kind::rule_ref, false, new_rule(rule, {std::move(body)}), 0};
    }
    seq.resize(item_start);
    uint32_t min = 0, max = 0;
    bool unbounded = false;
    const char op = s_[pos_++];
    if (op == '*') {
      unbounded = true;
    } else if (op == '+') {
      min = 1;
      unbounded = true;
    } else if (op == '?') {
      max = 1;
    } else {  // {m}, {m,}, {m,n}
      skip_space(true);
      min = max = parse_count();
      skip_space(true);
      if (peek() == ',') {
        ++pos_;
        skip_space(true);
        if (peek() == '}') unbounded = true;
        else max = parse_count();
        skip_space(true);
      }
      if (peek() != '}') fail(fmt::format("expected '}}' to close a repetition, found {}", describe_here()));
      ++pos_;
      if (!unbounded && max < min) fail(fmt::format("repetition {{{},{}}} has its maximum below its minimum", min, max));
    }
    if (static_cast<size_t>(min) * 2 + ranges_.size() + seq.size() > kMaxElements)
      fail(fmt::format("the grammar has more than {} elements", kMaxElements));
    for (uint32_t i = 0; i < min; ++i) seq.push_back(item);
    if (unbounded) {  // R ::= item R | (empty)
      const uint32_t id = new_rule(rule, {});
      const Element self{Kind::rule_ref, false, id, 0};
      bodies_[id] = {{item, self}, {}};
      count(bodies_[id]);
      seq.push_back(self);
    } else if (max > min) {  // R1 ::= item | ; Rk ::= item R(k-1) | : at most max - min more
      Element tail{};
      for (uint32_t k = 0; k < max - min; ++k) {
        Sequence first{item};
        if (k > 0) first.push_back(tail);
        tail = {Kind::rule_ref, false, new_rule(rule, {std::move(first), {}}), 0};
      }
      seq.push_back(tail);
    }
  }

  // A rule that can reach itself without consuming a character would recurse forever while matching.
  void check_left_recursion(const Rules& r) const {
    const size_t n = r.rule_start.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t id = 0; id < n; ++id) {
        if (nullable[id]) continue;
        bool all = true;  // within the current alternative
        for (uint32_t p = r.rule_start[id];; ++p) {
          const Element& e = r.elements[p];
          if (e.kind == Kind::end_alt || e.kind == Kind::end_rule) {
            if (all) {
              nullable[id] = changed = true;
              break;
            }
            if (e.kind == Kind::end_rule) break;
            all = true;
            continue;
          }
          all = all && e.kind == Kind::rule_ref && nullable[e.first];
        }
      }
    }
    // Edges: rule -> each rule that can come first in one of its alternatives.
    std::vector<std::vector<uint32_t>> first(n);
    for (size_t id = 0; id < n; ++id) {
      bool open = true;
      for (uint32_t p = r.rule_start[id];; ++p) {
        const Element& e = r.elements[p];
        if (e.kind == Kind::end_rule) break;
        if (e.kind == Kind::end_alt) {
          open = true;
          continue;
        }
        if (!open) continue;
        if (e.kind == Kind::rule_ref) first[id].push_back(e.first);
        open = e.kind == Kind::rule_ref && nullable[e.first];
      }
    }
    std::vector<int> color(n, 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<uint32_t, size_t>> stack;
    for (uint32_t start = 0; start < n; ++start) {
      if (color[start]) continue;
      stack.push_back({start, 0});
      color[start] = 1;
      while (!stack.empty()) {
        auto& [id, next] = stack.back();
        if (next == first[id].size()) {
          color[id] = 2;
          stack.pop_back();
          continue;
        }
        const uint32_t to = first[id][next++];
        if (color[to] == 1) {
          throw Error(fmt::format("[grammar] {}: rule '{}' is left-recursive (it can reach itself before matching any "
                                  "character); rewrite it with repetition, e.g. x ::= y (\",\" y)*",
                                  source_, r.rule_names[to]));
        }
        if (color[to] == 0) {
          color[to] = 1;
          stack.push_back({to, 0});
        }
      }
    }
  }

  std::string_view s_, source_;
  size_t pos_ = 0;
  int generated_ = 0;
  size_t total_ = 0;  // elements in all rule bodies so far
  std::map<std::string, uint32_t, std::less<>> ids_;
  std::vector<std::string> names_;
  std::vector<Alternatives> bodies_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
};

// Any JSON value, whitespace as JSON allows it (bounded runs, so a model cannot stall in blank space).
constexpr std::string_view kJsonGbnf = R"(root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt/] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [0-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
)";

}  // namespace

Grammar::Grammar(std::string gbnf, std::shared_ptr<const grammar::Rules> rules)
    : gbnf_(std::move(gbnf)), rules_(std::move(rules)) {}

std::shared_ptr<const Grammar> Grammar::parse(std::string_view gbnf, std::string_view source) {
  auto rules = Parser(gbnf, source).parse();
  return std::make_shared<const Grammar>(std::string(gbnf), std::move(rules));
}

std::shared_ptr<const Grammar> Grammar::any_json() {
  static const std::shared_ptr<const Grammar> g = parse(kJsonGbnf, "json_object");
  return g;
}

std::shared_ptr<const Grammar> Grammar::from_json_schema(std::string_view schema, std::string_view source) {
  return parse(json_schema_to_gbnf(schema, source), source);
}

}  // namespace bitnet
