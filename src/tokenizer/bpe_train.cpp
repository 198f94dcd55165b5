// Byte-level BPE training: count the pre-tokenized words once, then merge the most frequent pair repeatedly,
// updating pair counts only in the words that contain the merged pair (a max-heap with lazy deletion finds the
// next best pair).
#include <bitnet/bpe_train.h>
#include <bitnet/error.h>
#include <bitnet/tokenizer.h>

#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"

namespace bitnet {

namespace {

constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

}  // namespace

BpeVocabulary train_bpe(std::string_view text, const BpeTrainOptions& options) {
  const auto n_special = static_cast<int32_t>(options.special_tokens.size());
  BITNET_CHECK(options.vocab_size >= 256 + n_special,
               "[tokenizer-train] vocab_size ({}) must hold the 256 bytes and {} special tokens", options.vocab_size,
               n_special);
  BITNET_CHECK(options.min_frequency >= 1, "[tokenizer-train] min_frequency must be >= 1, got {}",
               options.min_frequency);

  // Words with their counts.
  const std::string clean = utf8_sanitize(text);
  std::unordered_map<std::string_view, int64_t> counts;
  const tokenizer::RegexSplitter splitter({kGpt2Pattern});
  for (std::string_view piece : splitter.split(clean)) ++counts[piece];
  std::vector<Word> words;
  words.reserve(counts.size());
  for (const auto& [w, c] : counts) {
    Word word{{}, c};
    for (unsigned char b : w) word.symbols.push_back(b);
    words.push_back(std::move(word));
  }
  // unordered_map order is not portable: sort so ties and ids are the same everywhere.
  std::sort(words.begin(), words.end(), [](const Word& a, const Word& b) { return a.symbols < b.symbols; });

  BpeVocabulary v;
  std::vector<std::string> bytes_of;  // raw bytes of each id (the vocabulary string is their GPT-2 spelling)
  std::unordered_map<std::string, int32_t> id_of;
  for (int b = 0; b < 256; ++b) {
    bytes_of.emplace_back(1, static_cast<char>(b));
    id_of.emplace(bytes_of.back(), b);
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::unordered_set<int32_t>> where;  // pair -> words holding it
  auto add_word_pairs = [&](int32_t wi, int64_t sign) {
    const Word& w = words[static_cast<size_t>(wi)];
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      const uint64_t k = pair_key(w.symbols[i], w.symbols[i + 1]);
      pair_count[k] += sign * w.count;
      if (sign > 0) where[k].insert(wi);
    }
  };
  for (int32_t wi = 0; wi < static_cast<int32_t>(words.size()); ++wi) add_word_pairs(wi, +1);

  // Max-heap on (count, then smaller pair key first); entries whose count is stale are skipped when popped.
  using Entry = std::pair<int64_t, uint64_t>;
  auto worse = [](const Entry& a, const Entry& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; };
  std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
  for (const auto& [k, c] : pair_count) heap.emplace(c, k);

  const int32_t target = options.vocab_size - n_special;
  while (static_cast<int32_t>(bytes_of.size()) < target && !heap.empty()) {
    const auto [c, k] = heap.top();
    heap.pop();
    const auto it = pair_count.find(k);
    if (it == pair_count.end() || it->second != c) continue;  // stale
    if (c < options.min_frequency) break;
    const auto a = static_cast<int32_t>(k >> 32), b = static_cast<int32_t>(k & 0xffffffffu);
    const std::string merged = bytes_of[static_cast<size_t>(a)] + bytes_of[static_cast<size_t>(b)];
    // Two merge paths can spell the same string ("a"+"bc", "ab"+"c"): one id, two merges (as HF does).
    int32_t id;
    if (auto f = id_of.find(merged); f != id_of.end()) {
      id = f->second;
    } else {
      id = static_cast<int32_t>(bytes_of.size());
      bytes_of.push_back(merged);
      id_of.emplace(merged, id);
    }
    v.merges.push_back(tokenizer::bytes_to_bpe_text(bytes_of[static_cast<size_t>(a)]) + " " +
                       tokenizer::bytes_to_bpe_text(bytes_of[static_cast<size_t>(b)]));

    const std::unordered_set<int32_t> affected = std::move(where[k]);
    where.erase(k);
    std::unordered_set<uint64_t> touched;
    for (int32_t wi : affected) {
      Word& w = words[static_cast<size_t>(wi)];
      add_word_pairs(wi, -1);
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) touched.insert(pair_key(w.symbols[i], w.symbols[i + 1]));
      std::vector<int32_t> out;
      out.reserve(w.symbols.size());
      for (size_t i = 0; i < w.symbols.size(); ++i) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == a && w.symbols[i + 1] == b) {
          out.push_back(id);
          ++i;
        } else {
          out.push_back(w.symbols[i]);
        }
      }
      w.symbols = std::move(out);
      add_word_pairs(wi, +1);
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) touched.insert(pair_key(w.symbols[i], w.symbols[i + 1]));
    }
    pair_count.erase(k);
    for (uint64_t t : touched) {
      auto pc = pair_count.find(t);
      if (pc == pair_count.end()) continue;
      if (pc->second <= 0) {
        pair_count.erase(pc);
        where.erase(t);
      } else {
        heap.emplace(pc->second, t);
      }
    }
  }

  for (const std::string& s : bytes_of) v.tokens.push_back(tokenizer::bytes_to_bpe_text(s));
  v.first_special = static_cast<int32_t>(v.tokens.size());
  for (const std::string& s : options.special_tokens) {
    BITNET_CHECK(!s.empty(), "[tokenizer-train] a special token is empty");
    v.tokens.push_back(s);
  }
  return v;
}

}  // namespace bitnet
