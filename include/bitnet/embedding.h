#pragma once
// Embeddings from a decoder model, as llama.cpp computes them: the final hidden states (after the output norm,
// what the head reads) of a text's tokens, pooled into one vector per text and normalized.
#include <bitnet/engine.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace bitnet {

// llama.cpp's pooling types: none (one vector per token), mean (over the tokens), cls (the first token's),
// last (the last token's, as causal embedding models such as e5-mistral use).
enum class Pooling { none, mean, cls, last };
Pooling parse_pooling(std::string_view name);  // throws naming the valid names
const char* pooling_name(Pooling p);

// llama.cpp's embd_normalize: -1 none, 0 scaled so the largest |value| is 32760 (int16 range), 1 taxicab (L1),
// 2 Euclidean (L2, the default of llama-server), p > 2 the p-norm.
void normalize_embedding(std::span<float> v, int norm);

struct Embeddings {
  int64_t rows = 0;           // 1, or the token count with Pooling::none
  int64_t dim = 0;
  std::vector<float> values;  // [rows, dim]
  int tokens = 0;             // tokens evaluated
};

// Evaluates `tokens` in sequence `seq` of `engine` from position 0 (its cache is overwritten) and pools and
// normalizes (each row) the final hidden states. Throws for an empty list or one longer than the context.
Embeddings embed_tokens(Engine& engine, std::span<const int32_t> tokens, Pooling pooling, int norm, int seq = 0);

}  // namespace bitnet
