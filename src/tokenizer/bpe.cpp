// Byte-level BPE (GPT-2, Llama-3; formats.md §3.1): special tokens split out, regex pre-tokenization, bytes
// mapped to printable code points, then merges applied lowest rank first, as Hugging Face tokenizers does.
#include <bitnet/error.h>

#include <queue>
#include <unordered_map>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace bitnet::tokenizer {

namespace {

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(VocabData&& v, std::unordered_map<std::string, int32_t>&& ranks)
      : Tokenizer(TokenizerKind::bpe, std::move(v)),
        splitter_(std::move(v.pre_patterns)),
        ranks_(std::move(ranks)),
        ignore_merges_(v.ignore_merges) {}

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override {
    std::vector<int32_t> ids;
    if (add_bos && bos_ >= 0) ids.push_back(bos_);
    const std::string clean = utf8_sanitize(text);
    for (const Fragment& f : split_special(clean, parse_special)) {
      if (f.id >= 0) {
        ids.push_back(f.id);
        continue;
      }
      for (std::string_view piece : splitter_.split(f.text)) encode_word(bytes_to_bpe_text(piece), ids);
    }
    return ids;
  }

  std::string token_to_piece(int32_t id) const override {
    check_id(id);
    const TokenType t = types_[id];
    if (t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown) return tokens_[id];
    std::string out;
    if (!bpe_text_to_bytes(tokens_[id], out)) return tokens_[id];  // not a byte-mapped string: as written
    return out;
  }

 private:
  RegexSplitter splitter_;
  std::unordered_map<std::string, int32_t> ranks_;  // "a b" -> rank
  bool ignore_merges_;

  int32_t rank(std::string_view a, std::string_view b) const {
    std::string key;
    key.reserve(a.size() + b.size() + 1);
    key.append(a).append(1, ' ').append(b);
    const auto it = ranks_.find(key);
    return it == ranks_.end() ? -1 : it->second;
  }

  void push_symbol(std::string_view sym, std::vector<int32_t>& ids) const {
    if (auto id = find_token(sym)) {
      ids.push_back(*id);
      return;
    }
    // A symbol the vocabulary lacks (not possible with a complete byte alphabet): its characters one by one,
    // or <unk>.
    for (size_t i = 0; i < sym.size();) {
      const Utf8Step st = utf8_step(sym, i);
      if (auto id = find_token(sym.substr(i, st.len))) ids.push_back(*id);
      else if (unk_ >= 0) ids.push_back(unk_);
      i += st.len;
    }
  }

  void encode_word(const std::string& word, std::vector<int32_t>& ids) const {
    if (word.empty()) return;
    if (ignore_merges_) {
      if (auto id = find_token(word)) {
        ids.push_back(*id);
        return;
      }
    }
    // Symbols as a linked list over the characters of the word; a merge joins a symbol with its right neighbour.
    struct Sym {
      uint32_t start, len;
      int32_t prev, next;
    };
    std::vector<Sym> syms;
    for (size_t i = 0; i < word.size();) {
      const uint32_t len = utf8_step(word, i).len;
      const auto n = static_cast<int32_t>(syms.size());
      syms.push_back({static_cast<uint32_t>(i), len, n - 1, n + 1});
      i += len;
    }
    syms.back().next = -1;
    auto text = [&](const Sym& s) { return std::string_view(word).substr(s.start, s.len); };
    // Candidate merges, lowest rank first and leftmost among equal ranks; an entry is stale when either symbol
    // has changed length since it was queued.
    struct Cand {
      int32_t rank, pos;
      uint32_t left_len, right_len;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<>> queue;
    auto consider = [&](int32_t pos) {
      if (pos < 0 || syms[pos].next < 0) return;
      const Sym& l = syms[pos];
      const Sym& r = syms[l.next];
      const int32_t rk = rank(text(l), text(r));
      if (rk >= 0) queue.push({rk, pos, l.len, r.len});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i);
    while (!queue.empty()) {
      const Cand c = queue.top();
      queue.pop();
      Sym& l = syms[c.pos];
      if (l.len != c.left_len || l.next < 0) continue;
      Sym& r = syms[l.next];
      if (r.len != c.right_len) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (l.next >= 0) syms[l.next].prev = c.pos;
      consider(l.prev);
      consider(c.pos);
    }
    for (int32_t i = 0; i >= 0; i = syms[i].next) push_symbol(text(syms[i]), ids);
  }
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(VocabData&& v) {
  if (v.pre_patterns.empty()) fail("{}: no pre-tokenizer patterns for pre-tokenizer '{}'", v.source, v.pre_name);
  std::unordered_map<std::string, int32_t> ranks;
  ranks.reserve(v.merges.size());
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& m = v.merges[i];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos || sp + 1 >= m.size())
      fail("{}: merge {} (\"{}\") is not two symbols separated by a space", v.source, i, m);
    ranks.emplace(m, static_cast<int32_t>(i));  // a repeated pair keeps its first (lowest) rank
  }
  v.merges.clear();
  return std::make_unique<BpeTokenizer>(std::move(v), std::move(ranks));
}

}  // namespace bitnet::tokenizer
