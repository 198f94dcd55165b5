// Causal GQA attention over the KV cache (f16 or q8_0).
//
// A work item is one KV head with a block of batch tokens of one sequence (and, when there are too few of
// those to load every thread evenly -- decode -- part of the KV head's group of query heads). The item
// converts each chunk of cached keys, then of values, to f32 once and uses it for all of its
// (token, query head) pairs.
// A loop over (token, head) pairs converted every cached row once per pair: 4 query heads x 128 tokens times
// per layer at pp128, which made attention a third of pp512.
//
// Each (token, head) pair goes through the same steps in the same order whatever item it falls in (block
// size, head split, thread count, other sequences in the batch): scores are row dots, the softmax is the same
// code, and the weighted sum adds the value rows in position order. So prefill equals token-by-token decode
// bit for bit, and 1 thread equals 2.
#include <bitnet/engine.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/vector.h"
#include "runtime/kv_cache_codec.h"

namespace bitnet {

using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {
// Cached rows converted per chunk: 256 x 128 floats = 128 KiB, in L2 next to the item's scores.
constexpr int64_t kChunkRows = 256;
// Scores per worker: tokens per block x query heads per KV head x context, at most this many floats (4 MiB).
constexpr int64_t kScoreFloats = int64_t{1} << 20;
constexpr int64_t kMaxBlockTokens = 16;
// An item with at most this many (token, query head) pairs -- decode -- reads an f16 cache directly (the
// kernels convert each value in registers) instead of converting chunks that so few pairs would use.
constexpr int64_t kDirectPairs = 4;
}  // namespace

int64_t Engine::attention_block_tokens() const {
  const TransformerConfig& c = model_.config();
  const int64_t group = c.heads / c.kv_heads;
  return std::clamp<int64_t>(kScoreFloats / (group * n_ctx_), 1, kMaxBlockTokens);
}

void Engine::allocate_attention_scratch() {
  const TransformerConfig& c = model_.config();
  const int64_t group = c.heads / c.kv_heads;
  const auto workers = static_cast<size_t>(pool_.size());
  attn_rows_.assign(workers * static_cast<size_t>(std::min(kChunkRows, n_ctx_) * c.head_dim), 0.0f);
  attn_scores_.assign(workers * static_cast<size_t>(attention_block_tokens() * group * n_ctx_), 0.0f);
  // At most one item per (token, query head): every token its own block, split by head.
  attn_items_.reserve(static_cast<size_t>(max_batch_ * c.heads));
}

// Blocks of at most attention_block_tokens() consecutive batch tokens of one sequence, times KV heads, times
// pieces of the query-head group.
void Engine::plan_attention(std::span<const BatchToken> batch) {
  const TransformerConfig& c = model_.config();
  const int64_t group = c.heads / c.kv_heads, block = attention_block_tokens();
  attn_items_.clear();
  // The block that starts at batch token t ends here.
  auto block_end = [&](size_t t) {
    size_t end = t + 1;
    while (end < batch.size() && end - t < static_cast<size_t>(block) && batch[end].seq == batch[t].seq) ++end;
    return end;
  };
  int64_t blocks = 0;
  for (size_t t = 0; t < batch.size(); t = block_end(t)) ++blocks;
  // Query heads per item: the whole group unless that leaves the threads unevenly loaded (decode: 5 KV heads
  // on 2 threads); then the fewest pieces that give every thread the same count or plenty of items. Each
  // piece converts the cached rows again, so fewer pieces are cheaper.
  const int64_t threads = pool_.size();
  int64_t pieces = group;
  for (int64_t p = 1; p < group; ++p) {
    if (group % p != 0) continue;
    const int64_t n = blocks * c.kv_heads * p;
    if (n >= 4 * threads || (n >= threads && n % threads == 0)) {
      pieces = p;
      break;
    }
  }
  const int64_t per_item = group / pieces;
  for (size_t t = 0; t < batch.size();) {
    const size_t end = block_end(t);
    int64_t cost = 0;  // dot products and weighted rows: sum of the tokens' key counts
    for (size_t i = t; i < end; ++i) cost += batch[i].pos + 1;
    for (int64_t kvh = 0; kvh < c.kv_heads; ++kvh)
      for (int64_t h = 0; h < group; h += per_item)
        attn_items_.push_back({static_cast<int32_t>(t), static_cast<int32_t>(end - t), static_cast<int32_t>(kvh),
                               static_cast<int32_t>(kvh * group + h), static_cast<int32_t>(per_item), cost * per_item});
    t = end;
  }
}

void Engine::attention(int64_t layer, std::span<const BatchToken> batch) {
  const TransformerConfig& c = model_.config();
  const int64_t d = c.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const auto& vk = kernels::vector_kernels();
  plan_attention(batch);
  int64_t total = 0;
  for (const AttentionItem& it : attn_items_) total += it.cost;
  const int workers = pool_.size();
  const int64_t chunk_rows = std::min(kChunkRows, n_ctx_);
  const int64_t score_stride = n_ctx_;
  pool_.parallel_for(workers, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      float* rows = attn_rows_.data() + w * chunk_rows * d;
      float* scores = attn_scores_.data() + w * (static_cast<int64_t>(attn_scores_.size()) / workers);
      // Items go to workers by cost, in order: item i belongs to the worker whose share holds its midpoint.
      int64_t before = 0;
      for (const AttentionItem& it : attn_items_) {
        const int64_t mid = before + it.cost / 2;
        before += it.cost;
        if (mid * workers / std::max<int64_t>(total, 1) != w) continue;
        const BatchToken* toks = batch.data() + it.first;
        const int seq = toks[0].seq;
        const int64_t n_keys = toks[it.count - 1].pos + 1;  // positions ascend within a sequence
        auto pair_scores = [&](int64_t t, int64_t h) { return scores + (t * it.heads + h) * score_stride; };
        auto query = [&](int64_t t, int64_t h) { return q_.data() + (it.first + t) * q_dim_ + (it.head + h) * d; };
        auto output = [&](int64_t t, int64_t h) { return o_.data() + (it.first + t) * q_dim_ + (it.head + h) * d; };
        // The cached rows (keys or values) of this KV head, chunk by chunk in position order, each chunk
        // converted to f32 once; use(t, h, c0, upto) then reads rows [c0, c0 + upto) of `rows` for each pair.
        auto over_chunks = [&](KvCacheType type, auto&& cache_row, auto&& use) {
          for (int64_t c0 = 0; c0 < n_keys; c0 += chunk_rows) {
            const int64_t n_rows = std::min(chunk_rows, n_keys - c0);
            for (int64_t j = 0; j < n_rows; ++j)
              detail::kv_decode(type, cache_row(c0 + j), it.kv_head * d, d, rows + j * d);
            for (int64_t t = 0; t < it.count; ++t) {
              const int64_t upto = std::min<int64_t>(n_rows, toks[t].pos + 1 - c0);
              if (upto <= 0) continue;
              for (int64_t h = 0; h < it.heads; ++h) use(t, h, c0, upto);
            }
          }
        };
        // This KV head's values in the f16 cache row that starts at row0; positions are kv_dim_ values apart.
        const bool few = it.count * it.heads <= kDirectPairs;
        auto f16_rows = [&](uint8_t* row0) { return reinterpret_cast<const uint16_t*>(row0) + it.kv_head * d; };
        // Scores.
        if (few && kv_types_.k == KvCacheType::f16) {
          for (int64_t t = 0; t < it.count; ++t)
            for (int64_t h = 0; h < it.heads; ++h)
              vk.dot_rows_f16(f16_rows(k_cache(layer, seq, 0)), toks[t].pos + 1, kv_dim_, query(t, h), d, pair_scores(t, h));
        } else {
          over_chunks(kv_types_.k, [&](int64_t p) { return k_cache(layer, seq, p); }, [&](int64_t t, int64_t h, int64_t c0, int64_t upto) {
            vk.dot_rows(rows, upto, d, query(t, h), d, pair_scores(t, h) + c0);
          });
        }
        // Softmax of each pair's scaled scores; the weights are left in place of the scores.
        for (int64_t t = 0; t < it.count; ++t) {
          const int64_t n = toks[t].pos + 1;
          for (int64_t h = 0; h < it.heads; ++h) {
            float* s = pair_scores(t, h);
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < n; ++j) {
              s[j] *= scale;
              m = std::max(m, s[j]);
            }
            vk.binary_scalar[static_cast<int>(BinaryOp::sub)](s, m, s, n);
            vk.unary[static_cast<int>(UnaryOp::exp)](s, s, n);
            const auto r = static_cast<float>(1.0 / vk.sum(s, n));
            vk.binary_scalar[static_cast<int>(BinaryOp::mul)](s, r, s, n);
            std::fill(output(t, h), output(t, h) + d, 0.0f);
          }
        }
        // Weighted sums of the values, added in position order.
        if (few && kv_types_.v == KvCacheType::f16) {
          for (int64_t t = 0; t < it.count; ++t)
            for (int64_t h = 0; h < it.heads; ++h)
              vk.axpy_rows_f16(pair_scores(t, h), f16_rows(v_cache(layer, seq, 0)), toks[t].pos + 1, kv_dim_, output(t, h), d);
        } else {
          over_chunks(kv_types_.v, [&](int64_t p) { return v_cache(layer, seq, p); }, [&](int64_t t, int64_t h, int64_t c0, int64_t upto) {
            vk.axpy_rows(pair_scores(t, h) + c0, rows, upto, d, output(t, h), d);
          });
        }
      }
    }
  });
}

}  // namespace bitnet
