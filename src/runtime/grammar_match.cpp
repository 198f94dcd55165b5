// Matching text against a grammar (see include/bitnet/grammar.h). The state is a set of stacks of positions in
// the flat rule array, as in llama.cpp's grammar engine: each stack's top is the character set the next code
// point must match, the positions below it are where to continue once the current alternative is done, and an
// empty stack means the text so far is a whole sentence. Stacks are kept without duplicates, flat in one array
// so that advancing allocates nothing once the buffers have grown.
#include <bitnet/error.h>
#include <bitnet/grammar.h>
#include <bitnet/tokenizer.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>

#include "runtime/grammar_rules.h"
#include "runtime/grammar_vocab.h"

namespace bitnet {

using grammar::Element;
using grammar::Kind;
using grammar::Rules;

namespace {
// An ambiguous grammar can hold many stacks at once; past this many it is refused rather than slowing every token.
constexpr size_t kMaxStacks = 4096;
// Expansion steps for one character (or the start). Rules that can match nothing reach the same stacks along
// exponentially many paths (`a ::= "" | "x"` thirty times in a row: 2^30), which kMaxStacks, counting distinct
// stacks, never sees; this bounds the work instead (64 steps per stack at the stack limit).
constexpr size_t kMaxExpandSteps = kMaxStacks * 64;
}  // namespace

struct GrammarMatcher::State {
  std::vector<uint32_t> data;  // stack i is data[ends[i-1] .. ends[i]) (bottom first)
  std::vector<uint32_t> ends;
  uint32_t partial = 0;        // bits of a UTF-8 character whose continuation bytes are still to come
  int partial_left = 0;
  uint32_t partial_min = 0;    // the smallest code point its length may encode (shorter forms are overlong)

  size_t count() const { return ends.size(); }
  std::span<const uint32_t> stack(size_t i) const {
    const uint32_t b = i == 0 ? 0 : ends[i - 1];
    return {data.data() + b, ends[i] - b};
  }
  void clear() {
    data.clear();
    ends.clear();
    partial = 0;
    partial_left = 0;
    partial_min = 0;
  }
  void add(std::span<const uint32_t> st) {
    for (size_t i = 0; i < count(); ++i) {
      const auto s = stack(i);
      if (s.size() == st.size() && std::equal(s.begin(), s.end(), st.begin())) return;
    }
    if (count() >= kMaxStacks)
      throw Error(fmt::format("[grammar] the grammar is too ambiguous: more than {} ways to continue at once", kMaxStacks));
    data.insert(data.end(), st.begin(), st.end());
    ends.push_back(static_cast<uint32_t>(data.size()));
  }
};

namespace grammar {

// Replaces rule references on top of `st` by the alternatives they stand for until every resulting stack has a
// character set on top (or is empty), and adds those to `out`. `st` is restored before returning.
void expand(const Rules& r, std::vector<uint32_t>& st, GrammarMatcher::State& out, size_t& steps) {
  if (++steps > kMaxExpandSteps)
    throw Error(fmt::format("[grammar] the grammar is too ambiguous: more than {} expansion steps for one character",
                            kMaxExpandSteps));
  if (st.empty() || r.elements[st.back()].kind == Kind::chars) {
    out.add(st);
    return;
  }
  const uint32_t pos = st.back();
  const uint32_t rule = r.elements[pos].first;
  st.pop_back();
  const bool more = !r.is_end(pos + 1);  // the rest of this alternative, once the rule is matched
  if (more) st.push_back(pos + 1);
  for (uint32_t p = r.rule_start[rule];;) {
    if (r.is_end(p)) {
      expand(r, st, out, steps);  // an empty alternative: go straight on
    } else {
      st.push_back(p);
      expand(r, st, out, steps);
      st.pop_back();
    }
    while (!r.is_end(p)) ++p;  // to this alternative's end
    if (r.elements[p].kind == Kind::end_rule) break;
    ++p;
  }
  if (more) st.pop_back();
  st.push_back(pos);
}

// The stacks of `in` whose top matches code point `cp`, advanced past it, into `out`.
void advance_code_point(const Rules& r, const GrammarMatcher::State& in, uint32_t cp, GrammarMatcher::State& out,
                        std::vector<uint32_t>& scratch) {
  size_t steps = 0;
  for (size_t i = 0; i < in.count(); ++i) {
    const auto st = in.stack(i);
    if (st.empty() || !r.matches(r.elements[st.back()], cp)) continue;
    scratch.assign(st.begin(), st.end() - 1);
    if (!r.is_end(st.back() + 1)) scratch.push_back(st.back() + 1);
    expand(r, scratch, out, steps);
  }
}

// One byte of UTF-8: a whole character advances the stacks, part of one keeps the stacks that some completion
// of it could match. False when nothing survives (`out` is then empty).
bool advance_byte(const Rules& r, const GrammarMatcher::State& in, uint8_t b, GrammarMatcher::State& out,
                  std::vector<uint32_t>& scratch) {
  out.clear();
  uint32_t value = 0, min = 0;
  int left = 0;
  if (in.partial_left == 0) {
    if (b < 0x80) {
      advance_code_point(r, in, b, out, scratch);
      return out.count() > 0;
    }
    if ((b & 0xE0) == 0xC0) value = b & 0x1F, left = 1, min = 0x80;
    else if ((b & 0xF0) == 0xE0) value = b & 0x0F, left = 2, min = 0x800;
    else if ((b & 0xF8) == 0xF0) value = b & 0x07, left = 3, min = 0x10000;
    else return false;  // a continuation byte or 0xF8..0xFF cannot start a character
  } else {
    if ((b & 0xC0) != 0x80) return false;
    value = (in.partial << 6) | (b & 0x3F);
    left = in.partial_left - 1;
    min = in.partial_min;
    if (left == 0) {
      // Overlong forms, surrogates and values past U+10FFFF are not characters.
      if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return false;
      advance_code_point(r, in, value, out, scratch);
      return out.count() > 0;
    }
  }
  const int shift = 6 * left;
  const uint32_t lo = std::max(value << shift, min), hi = std::min((value << shift) | ((1u << shift) - 1), 0x10FFFFu);
  if (lo > hi) return false;
  for (size_t i = 0; i < in.count(); ++i) {
    const auto st = in.stack(i);
    if (!st.empty() && r.matches_some(r.elements[st.back()], lo, hi)) out.add(st);
  }
  out.partial = value;
  out.partial_left = left;
  out.partial_min = min;
  return out.count() > 0;
}

}  // namespace grammar

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar)
    : grammar_(std::move(grammar)), state_(std::make_unique<State>()) {
  BITNET_CHECK(grammar_ != nullptr, "[grammar] a matcher needs a grammar");
  reset();
}

GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;

void GrammarMatcher::reset() {
  const Rules& r = grammar_->rules();
  state_->clear();
  std::vector<uint32_t> st;
  size_t steps = 0;
  for (uint32_t p = r.rule_start[r.root];;) {  // one stack per alternative of root
    st.clear();
    if (!r.is_end(p)) st.push_back(p);
    grammar::expand(r, st, *state_, steps);
    while (!r.is_end(p)) ++p;
    if (r.elements[p].kind == Kind::end_rule) break;
    ++p;
  }
}

namespace grammar {
// `state` advanced over `bytes`, or nothing when the grammar refuses them.
std::optional<GrammarMatcher::State> advanced(const Rules& r, const GrammarMatcher::State& state, std::string_view bytes) {
  GrammarMatcher::State a = state, b;
  std::vector<uint32_t> scratch;
  for (const char c : bytes) {
    if (!advance_byte(r, a, static_cast<uint8_t>(c), b, scratch)) return std::nullopt;
    std::swap(a, b);
  }
  return a;
}
}  // namespace grammar

bool GrammarMatcher::allows(std::string_view bytes) const {
  return grammar::advanced(grammar_->rules(), *state_, bytes).has_value();
}

bool GrammarMatcher::accept(std::string_view bytes) {
  auto next = grammar::advanced(grammar_->rules(), *state_, bytes);
  if (!next) return false;
  *state_ = std::move(*next);
  return true;
}

bool GrammarMatcher::can_end() const {
  if (state_->partial_left != 0) return false;
  for (size_t i = 0; i < state_->count(); ++i)
    if (state_->stack(i).empty()) return true;
  return false;
}

bool GrammarMatcher::must_end() const { return can_end() && state_->count() == 1; }

bool GrammarMatcher::allows_token(const Tokenizer& tok, int32_t id) const {
  if (tok.is_eog(id)) return can_end();
  const auto held = grammar::vocab_trie(tok);
  const grammar::VocabTrie& trie = *held;
  if (id < 0 || static_cast<size_t>(id) >= trie.piece_of.size() || trie.piece_of[id] < 0) return false;
  return allows(trie.pieces[static_cast<size_t>(trie.piece_of[id])]);
}

bool GrammarMatcher::accept_token(const Tokenizer& tok, int32_t id) {
  if (tok.is_eog(id)) return can_end();
  const auto held = grammar::vocab_trie(tok);
  const grammar::VocabTrie& trie = *held;
  if (id < 0 || static_cast<size_t>(id) >= trie.piece_of.size() || trie.piece_of[id] < 0) return false;
  return accept(trie.pieces[static_cast<size_t>(trie.piece_of[id])]);
}

void GrammarMatcher::allowed_tokens(const Tokenizer& tok, std::vector<uint8_t>& allowed) const {
  const auto held = grammar::vocab_trie(tok);
  const grammar::VocabTrie& trie = *held;
  const Rules& r = grammar_->rules();
  allowed.assign(static_cast<size_t>(tok.vocab_size()), 0);
  if (can_end())
    for (const int32_t id : tok.eog_ids()) allowed[static_cast<size_t>(id)] = 1;
  // Depth-first over the trie with one state per depth: a refused byte prunes every token below it.
  std::vector<State> at(trie.max_depth + 1);
  at[0] = *state_;
  std::vector<uint32_t> scratch;
  std::vector<std::pair<int32_t, size_t>> todo;  // (first child of a node, depth of that node)
  todo.emplace_back(trie.nodes[0].first_child, 0);
  while (!todo.empty()) {
    auto& [child, depth] = todo.back();
    if (child < 0) {
      todo.pop_back();
      continue;
    }
    const grammar::VocabTrie::Node& n = trie.nodes[static_cast<size_t>(child)];
    const size_t d = depth;
    child = n.next_sibling;  // this entry moves on to the next sibling; `n` is visited now
    if (!grammar::advance_byte(r, at[d], n.byte, at[d + 1], scratch)) continue;
    for (uint32_t t = n.first_token; t < n.first_token + n.token_count; ++t)
      allowed[static_cast<size_t>(trie.token_ids[t])] = 1;
    if (n.first_child >= 0) todo.emplace_back(n.first_child, d + 1);
  }
}

}  // namespace bitnet
