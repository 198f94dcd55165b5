#pragma once
// The vocabulary as the grammar sees it: each token's text (the bytes it decodes to) in a trie, so that one
// walk decides every token sharing a prefix at once. Built once per tokenizer and cached.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bitnet {
class Tokenizer;
}

namespace bitnet::grammar {

struct VocabTrie {
  struct Node {
    int32_t first_child = -1;
    int32_t next_sibling = -1;
    uint32_t first_token = 0;  // the tokens whose text ends here: token_ids[first_token .. + token_count)
    uint32_t token_count = 0;
    uint8_t byte = 0;
  };
  std::vector<Node> nodes;          // nodes[0] is the root (the empty text)
  std::vector<int32_t> token_ids;
  std::vector<std::string> pieces;  // distinct texts
  std::vector<int32_t> piece_of;    // token id -> index in pieces, -1 for tokens that are never text (control)
  size_t max_depth = 0;
};

// The trie of `tok`'s vocabulary (control and unused tokens and empty texts left out), built on first use.
std::shared_ptr<const VocabTrie> vocab_trie(const Tokenizer& tok);

}  // namespace bitnet::grammar
