// SentencePiece (Llama-2; formats.md §3.3) as llama.cpp runs it: spaces become U+2581, one is put in front of
// the text (and after each special token), then the adjacent pair whose concatenation is the highest-scoring
// vocabulary piece is merged until none is; characters left without a piece become <0xNN> byte tokens.
#include <bitnet/error.h>

#include <array>
#include <cctype>
#include <optional>
#include <queue>
#include <string>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace bitnet::tokenizer {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(VocabData&& v) : Tokenizer(TokenizerKind::spm, std::move(v)), scores_(std::move(v.scores)) {
    byte_ids_.fill(-1);
    for (int32_t id = 0; id < vocab_size(); ++id) {
      if (types_[id] != TokenType::byte) continue;
      const std::string& t = tokens_[id];
      // "<0xAB>": two hex digits, checked as such (sscanf's %2x also takes "-B", a byte of 0xFFFFFFF5).
      auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) && hex(t[4]))
        byte_ids_[std::stoul(t.substr(3, 2), nullptr, 16)] = id;
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override {
    std::vector<int32_t> ids;
    if (add_bos && bos_ >= 0) ids.push_back(bos_);
    const std::string clean = utf8_sanitize(text);
    bool after_special = true;  // the text's start counts as "after a special token"
    for (const Fragment& f : split_special(clean, parse_special)) {
      if (f.id >= 0) {
        ids.push_back(f.id);
        after_special = true;
        continue;
      }
      std::string s;
      if (add_space_prefix_ && after_special) s += kSpace;
      for (char c : f.text) {
        if (c == ' ') s += kSpace;
        else s += c;
      }
      encode_text(s, ids);
      after_special = false;
    }
    return ids;
  }

  std::string token_to_piece(int32_t id) const override {
    check_id(id);
    const std::string& t = tokens_[id];
    switch (types_[id]) {
      case TokenType::byte:
        for (int b = 0; b < 256; ++b)
          if (byte_ids_[b] == id) return std::string(1, static_cast<char>(b));
        return t;
      case TokenType::control:
      case TokenType::unknown:
        return t;
      default: {
        std::string out;
        for (size_t i = 0; i < t.size();) {
          if (t.compare(i, kSpace.size(), kSpace) == 0) {
            out += ' ';
            i += kSpace.size();
          } else {
            out += t[i++];
          }
        }
        return out;
      }
    }
  }

 private:
  std::vector<float> scores_;
  std::array<int32_t, 256> byte_ids_{};

  // A piece that segmentation may produce: not a control token (those come only from special-token matching).
  std::optional<int32_t> piece_id(std::string_view s) const {
    auto id = find_token(s);
    if (id && types_[*id] == TokenType::control) return std::nullopt;
    return id;
  }

  void encode_text(const std::string& s, std::vector<int32_t>& ids) const {
    if (s.empty()) return;
    struct Sym {
      uint32_t start, len;
      int32_t prev, next;
    };
    std::vector<Sym> syms;
    for (size_t i = 0; i < s.size();) {
      const uint32_t len = utf8_step(s, i).len;
      const auto n = static_cast<int32_t>(syms.size());
      syms.push_back({static_cast<uint32_t>(i), len, n - 1, n + 1});
      i += len;
    }
    syms.back().next = -1;
    auto text = [&](const Sym& x) { return std::string_view(s).substr(x.start, x.len); };
    // Highest score first, then leftmost; stale when either symbol changed since it was queued.
    struct Cand {
      float score;
      int32_t left;
      uint32_t len;  // bytes of the merged piece
      bool operator<(const Cand& o) const { return score != o.score ? score < o.score : left > o.left; }
    };
    std::priority_queue<Cand> queue;
    auto consider = [&](int32_t left) {
      if (left < 0 || syms[left].next < 0) return;
      const Sym& l = syms[left];
      const Sym& r = syms[l.next];
      const auto id = piece_id(std::string_view(s).substr(l.start, l.len + r.len));
      if (id) queue.push({scores_[*id], left, l.len + r.len});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i);
    while (!queue.empty()) {
      const Cand c = queue.top();
      queue.pop();
      Sym& l = syms[c.left];
      if (l.len == 0 || l.next < 0) continue;
      Sym& r = syms[l.next];
      if (l.len + r.len != c.len) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (l.next >= 0) syms[l.next].prev = c.left;
      consider(l.prev);
      consider(c.left);
    }
    for (int32_t i = 0; i >= 0; i = syms[i].next) {
      const std::string_view piece = text(syms[i]);
      if (auto id = piece_id(piece)) {
        ids.push_back(*id);
        continue;
      }
      for (char c : piece) {  // byte fallback
        const int32_t b = byte_ids_[static_cast<uint8_t>(c)];
        if (b >= 0) ids.push_back(b);
        else if (unk_ >= 0) ids.push_back(unk_);
      }
    }
  }
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(VocabData&& v) {
  if (v.scores.size() != v.tokens.size())
    fail("{}: SentencePiece needs one score per token ({} scores for {} tokens)", v.source, v.scores.size(),
         v.tokens.size());
  return std::make_unique<SpmTokenizer>(std::move(v));
}

}  // namespace bitnet::tokenizer
