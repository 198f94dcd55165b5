// The vocabulary trie of the grammar sampler (see grammar_vocab.h).
#include "runtime/grammar_vocab.h"

#include <bitnet/tokenizer.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <numeric>
#include <utility>

namespace bitnet::grammar {

namespace {

std::shared_ptr<const VocabTrie> build(const Tokenizer& tok) {
  auto trie = std::make_shared<VocabTrie>();
  const int32_t n = tok.vocab_size();
  trie->piece_of.assign(static_cast<size_t>(n), -1);
  std::vector<std::pair<std::string, int32_t>> texts;
  texts.reserve(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    const TokenType t = tok.token_type(id);
    if (t == TokenType::control || t == TokenType::unused) continue;
    std::string piece = tok.token_to_piece(id);
    if (!piece.empty()) texts.emplace_back(std::move(piece), id);
  }
  std::sort(texts.begin(), texts.end());
  // Sorted texts: a node's children arrive in byte order, and the path of the previous text is reused.
  trie->nodes.emplace_back();
  std::vector<int32_t> path{0};  // path[d]: the node at depth d of the previous text
  std::vector<int32_t> last_child{-1};
  const std::string* prev = nullptr;
  for (const auto& [text, id] : texts) {
    if (prev == nullptr || *prev != text) {
      trie->pieces.push_back(text);
      size_t common = 0;
      if (prev != nullptr)
        while (common < prev->size() && common < text.size() && (*prev)[common] == text[common]) ++common;
      path.resize(common + 1);
      last_child.resize(common + 1);
      for (size_t d = common; d < text.size(); ++d) {
        const auto node = static_cast<int32_t>(trie->nodes.size());
        trie->nodes.push_back({});
        trie->nodes.back().byte = static_cast<uint8_t>(text[d]);
        VocabTrie::Node& parent = trie->nodes[static_cast<size_t>(path[d])];
        if (last_child[d] < 0 || parent.first_child < 0) parent.first_child = node;
        else trie->nodes[static_cast<size_t>(last_child[d])].next_sibling = node;
        last_child[d] = node;
        path.push_back(node);
        last_child.push_back(-1);
      }
      trie->max_depth = std::max(trie->max_depth, text.size());
      VocabTrie::Node& end = trie->nodes[static_cast<size_t>(path[text.size()])];
      end.first_token = static_cast<uint32_t>(trie->token_ids.size());
      prev = &text;
    }
    trie->nodes[static_cast<size_t>(path[text.size()])].token_count++;
    trie->token_ids.push_back(id);
    trie->piece_of[static_cast<size_t>(id)] = static_cast<int32_t>(trie->pieces.size() - 1);
  }
  return trie;
}

}  // namespace

std::shared_ptr<const VocabTrie> vocab_trie(const Tokenizer& tok) {
  // A few tokenizers at a time (a process rarely has more than one); keyed by instance(), never by address.
  static std::mutex mutex;
  static std::vector<std::pair<uint64_t, std::shared_ptr<const VocabTrie>>> cache;
  constexpr size_t kEntries = 4;
  std::lock_guard<std::mutex> lock(mutex);
  for (auto& entry : cache)
    if (entry.first == tok.instance()) return entry.second;
  if (cache.size() == kEntries) cache.erase(cache.begin());
  cache.emplace_back(tok.instance(), build(tok));
  return cache.back().second;
}

}  // namespace bitnet::grammar
