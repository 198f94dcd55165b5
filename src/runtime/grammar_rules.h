#pragma once
// The parsed form of a GBNF grammar, flat for matching: every rule is its alternatives laid end to end in one
// element array, each alternative closed by an `end_alt` (more follow) or `end_rule` (the last). Repetitions and
// groups were rewritten into generated rules by the parser, so an element is only a character set or a rule
// reference. A matching position is an index into `elements`.
#include <cstdint>
#include <string>
#include <vector>

namespace bitnet::grammar {

enum class Kind : uint8_t { chars, rule_ref, end_alt, end_rule };

struct Element {
  Kind kind;
  bool negated = false;  // chars: matches code points in none of the ranges ("." is a negated empty set)
  uint32_t first = 0;    // chars: first range in Rules::ranges; rule_ref: the rule's id
  uint32_t count = 0;    // chars: number of ranges
};

struct Rules {
  std::vector<Element> elements;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive code point ranges of character sets
  std::vector<uint32_t> rule_start;                   // rule id -> index of its first element
  std::vector<std::string> rule_names;                // for messages
  uint32_t root = 0;

  bool is_end(uint32_t pos) const {
    const Kind k = elements[pos].kind;
    return k == Kind::end_alt || k == Kind::end_rule;
  }
  // Whether character set `e` contains code point `cp`.
  bool matches(const Element& e, uint32_t cp) const {
    bool in = false;
    for (uint32_t i = e.first; i < e.first + e.count && !in; ++i) in = ranges[i].first <= cp && cp <= ranges[i].second;
    return in != e.negated;
  }
  // Whether character set `e` contains some code point in [lo, hi] (a UTF-8 character not yet complete).
  bool matches_some(const Element& e, uint32_t lo, uint32_t hi) const {
    for (uint32_t i = e.first; i < e.first + e.count; ++i) {
      const auto [a, b] = ranges[i];
      if (!e.negated && a <= hi && lo <= b) return true;
      if (e.negated && a <= lo && hi <= b) return false;  // one range covers all of them: none is outside
    }
    return e.negated;  // negated: conservative (ranges that together cover [lo, hi] are not merged)
  }
};

}  // namespace bitnet::grammar
