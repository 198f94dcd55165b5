#pragma once
// The parsed form of a Jinja chat template (jinja_parse.cpp builds it, jinja_eval.cpp renders it).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace bitnet::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Expr {
  enum K { literal, name, attr, item, slice, call, filter, test, not_, neg, binop, cond, list, dict, tuple, and_, or_ } k;
  explicit Expr(K kind) : k(kind) {}
  Value value;  // literal
  std::string str;  // name, attribute, filter/test name, operator
  std::vector<ExprPtr> a;  // operands / arguments (a[0] is the callee or the filtered value)
  std::vector<std::pair<std::string, ExprPtr>> kw;
  bool negated = false;  // `is not`, `not in`
  int depth = 1;          // height of this subtree (bounded by the parser, so evaluation cannot exhaust the stack)
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

// Cuts the source into text and tags with jinja2's whitespace rules (trim_blocks, lstrip_blocks, "-" / "+"
// markers, one trailing newline dropped) and parses the tags with jinja2's operator precedence. Throws
// bitnet::Error naming the line of the first construct that is not supported.
Body parse_template(const std::string& source);

}  // namespace bitnet::jinja
