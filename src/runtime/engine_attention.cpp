// Causal GQA attention over the KV cache (f16 or q8_0), streamed in units with an online softmax.
//
// A sequence's cached positions fall into units of kUnit: unit u holds positions [u kUnit, (u + 1) kUnit), the
// same whatever the batch. For each (token, query head) pair, every unit it sees gives a partial result: the
// unit's largest scaled score m, the sum l of e^(s - m), and o = the sum of e^(s - m) x value row, added in
// position order. The partials are folded in unit order -- the first as it is, each next one by
//   M' = max(M, m),  L = L e^(M - M') + l e^(m - M'),  O = O e^(M - M') + o e^(m - M')
// -- and the output is O / L: the softmax-weighted sum of the values, with scratch for one unit per pair
// instead of the whole context.
//
// A work item is one KV head with its whole group of query heads, a block of at most kBlockTokens consecutive
// batch tokens of one sequence, and a range of units. With an f16 cache it converts each chunk of cached keys, then
// of values, to f32 once for all of its (token, head) pairs (one token reads them in place). A q8_0 cache is read
// in place by integer kernels (kernels/attention_q8.h): int8 query x key products, and the values summed with
// 15-bit weights. When the blocks give too few items to load every thread (decode: 5 KV heads on 2 threads), each
// block's units are split into ranges, one item each; those items keep their units' partials in attn_partials_
// and a second pass folds them.
//
// Bit for bit: a pair's unit partial is the same whatever item computes it (block, split, thread count, other
// sequences in the batch) -- the scores are row dots, the softmax is the same code, the values are added in
// position order (q8_0: in groups of 32 rows from the unit's start) -- and the fold takes the units in order
// through the same function in an item and in the second pass. So prefill equals token-by-token decode, and 1
// thread equals 2.
#include <bitnet/engine.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/attention_q8.h"
#include "kernels/vector.h"
#include "runtime/kv_cache_codec.h"

namespace bitnet {

using kernels::BinaryOp;

namespace {
// Positions per softmax unit: the unit of the split along the context and of the partials kept per pair.
constexpr int64_t kUnit = 128;
// Cached rows converted to f32 at a time: 32 x 128 floats = 16 KiB, in L1 while all pairs read them.
constexpr int64_t kChunkRows = 32;
// q8_0 values are summed in groups of kQ8SumRows rows from each call's first, and q8_0 planes are read from a
// tile's start: chunks must start on a group and on a key and a value tile.
static_assert(kChunkRows % kernels::kQ8SumRows == 0 && kUnit % kChunkRows == 0);
static_assert(kChunkRows % kernels::kQ8KeyTileRows == 0 && kChunkRows % kernels::kQ8ValueTileRows == 0);
// Chunks between the one that is read and the one that is prefetched.
constexpr int64_t kPrefetchAhead = 2;
// Batch tokens per block: 16 x a group of 4 query heads = 64 pairs share each converted chunk.
constexpr int64_t kBlockTokens = 16;
// Batches of at most this many tokens may split their blocks along the context (bounds attn_partials_).
constexpr int64_t kSplitTokens = 4;
// A partial: the unit's max and sum, then head_dim values.
constexpr int64_t kPartialHeader = 2;

int64_t units_of(int64_t positions) { return (positions + kUnit - 1) / kUnit; }

// A head's cached rows read in place: f16 values `stride` apart, or q8_0 key or value tiles (kernels/attention_q8.h).
struct F16Rows {
  const uint16_t* rows;
  int64_t stride;
};
// The q8_0 kernels take the stream's lines ahead as they run (kernels::PrefetchLines).
struct Q8KeyTiles {
  const uint8_t* tiles;
  kernels::PrefetchLines* prefetch;
};
struct Q8ValueTiles {
  const uint8_t* tiles;
  kernels::PrefetchLines* prefetch;
};

// Folds a unit's partial (header m, l; values o) into a pair's state (M, L; O). One out-of-line function, so that
// an item's fold and the second pass's run the same instructions (no contraction choices made per call site).
[[gnu::noinline]] void fold_partial(const kernels::VectorKernels& vk, float* state, float* out, const float* header,
                                    const float* o, int64_t d) {
  const float m = std::max(state[0], header[0]);
  const float a = std::exp(state[0] - m), b = std::exp(header[0] - m);
  const float old_part = state[1] * a, new_part = header[1] * b;
  state[0] = m;
  state[1] = old_part + new_part;
  vk.scale_add(out, a, o, b, d);
}

[[gnu::noinline]] void finish_pair(const kernels::VectorKernels& vk, const float* state, float* out, int64_t d) {
  vk.binary_scalar[static_cast<int>(BinaryOp::mul)](out, 1.0f / state[1], out, d);
}
}  // namespace

void Engine::allocate_attention_scratch() {
  const TransformerConfig& c = model_.config();
  const int64_t group = c.heads / c.kv_heads, d = c.head_dim, pairs = kBlockTokens * group;
  const int64_t workers = pool_.size();
  auto floats = [](int64_t n) { return static_cast<size_t>(n); };
  attn_rows_.assign(floats(workers * kChunkRows * d), 0.0f);
  attn_scores_.assign(floats(workers * pairs * kUnit), 0.0f);
  attn_unit_.assign(floats(workers * pairs * (kPartialHeader + d)), 0.0f);
  attn_state_.assign(floats(workers * pairs * kPartialHeader), 0.0f);
  if (kv_types_.k == KvCacheType::q8_0) {
    const int64_t segments = workers * pairs * kernels::q8_segments(d);
    attn_query_codes_.assign(floats(segments * kernels::kQ8Block), 0);
    attn_query_scales_.assign(floats(segments), 0.0f);
    attn_query_sums_.assign(floats(segments), 0);
  }
  attn_partials_.assign(floats(std::min(kSplitTokens, max_batch_) * c.heads * units_of(n_ctx_) * (kPartialHeader + d)),
                        0.0f);
  // Without a split at most one item per (token, KV head); a split batch has at most kSplitTokens blocks, each
  // split into at most 4 x threads ranges per KV head (plan_attention).
  attn_items_.reserve(static_cast<size_t>(std::max(max_batch_, kSplitTokens * 4 * workers) * c.kv_heads));
}

// Blocks of at most kBlockTokens consecutive batch tokens of one sequence, times KV heads, times ranges of
// units when the blocks are too few to load every thread.
void Engine::plan_attention(std::span<const BatchToken> batch) {
  const TransformerConfig& c = model_.config();
  const int64_t group = c.heads / c.kv_heads;
  attn_items_.clear();
  // The block that starts at batch token t ends here.
  auto block_end = [&](size_t t) {
    size_t end = t + 1;
    while (end < batch.size() && end - t < static_cast<size_t>(kBlockTokens) && batch[end].seq == batch[t].seq) ++end;
    return end;
  };
  int64_t blocks = 0;
  for (size_t t = 0; t < batch.size(); t = block_end(t)) ++blocks;
  // Ranges per block: enough for about 4 items per thread (so that the cost-ordered share-out is even).
  const int64_t threads = pool_.size(), base = blocks * c.kv_heads;
  int64_t ranges = 1;
  if (static_cast<int64_t>(batch.size()) <= kSplitTokens && base < 4 * threads) ranges = (4 * threads + base - 1) / base;
  for (size_t t = 0; t < batch.size();) {
    const size_t end = block_end(t);
    const int64_t units = units_of(batch[end - 1].pos + 1);  // positions ascend within a sequence
    const int64_t split = std::min(ranges, units);
    for (int64_t kvh = 0; kvh < c.kv_heads; ++kvh)
      for (int64_t r = 0; r < split; ++r) {
        const int64_t u0 = units * r / split, u1 = units * (r + 1) / split;
        int64_t cost = 0;  // dot products and weighted rows
        for (size_t i = t; i < end; ++i)
          cost += std::max<int64_t>(0, std::min<int64_t>(u1 * kUnit, batch[i].pos + 1) - u0 * kUnit);
        attn_items_.push_back({static_cast<int32_t>(t), static_cast<int32_t>(end - t), static_cast<int32_t>(kvh),
                               static_cast<int32_t>(u0), static_cast<int32_t>(u1), split > 1, cost * group});
      }
    t = end;
  }
}

void Engine::attention(int64_t layer, std::span<const BatchToken> batch) {
  const TransformerConfig& c = model_.config();
  const int64_t d = c.head_dim, group = c.heads / c.kv_heads, partial_size = kPartialHeader + d;
  const int64_t ctx_units = units_of(n_ctx_);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const auto& vk = kernels::vector_kernels();
  const auto mul = vk.binary_scalar[static_cast<int>(BinaryOp::mul)];
  const auto& aq = kernels::attention_q8_kernels();
  // q8_0 keys: each query is rounded to int8 once per item, with the score scale folded into its scales.
  const bool keys_q8 = kv_types_.k == KvCacheType::q8_0;
  const int64_t query_segments = kernels::q8_segments(d);
  plan_attention(batch);
  int64_t total = 0;
  for (const AttentionItem& it : attn_items_) total += it.cost;
  const int workers = pool_.size();
  const int64_t max_pairs = kBlockTokens * group;
  // A split item's partial of batch token t, query head h, unit u.
  auto stored = [&](int64_t t, int64_t h, int64_t u) {
    return attn_partials_.data() + ((t * c.heads + h) * ctx_units + u) * partial_size;
  };
  auto output = [&](int64_t t, int64_t h) { return o_.data() + t * q_dim_ + h * d; };
  const detail::KvPlane k_layout_of = k_layout(), v_layout_of = v_layout();
  // The cache lines of positions [p, p + n) of a KV head's plane (keys or values), to bring into L2.
  auto rows_lines = [&](const uint8_t* plane, bool keys, int64_t p, int64_t n) {
    const detail::KvPlane& layout = keys ? k_layout_of : v_layout_of;
    const uint8_t* begin = plane + layout.offset(p);
    return kernels::PrefetchLines{reinterpret_cast<uintptr_t>(begin) & ~uintptr_t{63},
                                  reinterpret_cast<uintptr_t>(begin + layout.span(p, n))};
  };
  pool_.parallel_for(workers, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      float* rows = attn_rows_.data() + w * kChunkRows * d;
      float* scores = attn_scores_.data() + w * max_pairs * kUnit;
      // The unit's partials: the pairs' headers, then their values (contiguous per token, as the kernels write them).
      float* headers = attn_unit_.data() + w * max_pairs * partial_size;
      float* values = headers + max_pairs * kPartialHeader;
      float* states = attn_state_.data() + w * max_pairs * kPartialHeader;
      const int64_t first_segment = w * max_pairs * query_segments;
      // Items go to workers by cost, in order: item i belongs to the worker whose share holds its midpoint.
      int64_t before = 0;
      for (const AttentionItem& it : attn_items_) {
        const int64_t mid = before + it.cost / 2;
        before += it.cost;
        if (mid * workers / std::max<int64_t>(total, 1) != w) continue;
        const BatchToken* toks = batch.data() + it.first;
        const int seq = toks[0].seq;
        const int64_t n_keys = toks[it.count - 1].pos + 1;
        const int64_t head0 = static_cast<int64_t>(it.kv_head) * group;
        // Pair p = (token t of the block, query head head0 + h) at index t * group + h. Token t's group of
        // queries lies together in q_, and so do its outputs in o_.
        auto queries = [&](int64_t t) { return q_.data() + (it.first + t) * q_dim_ + head0 * d; };
        const uint8_t* key_plane = k_plane(layer, seq, it.kv_head);
        const uint8_t* value_plane = v_plane(layer, seq, it.kv_head);
        // Where position p's row (or, in a tiled plane, its tile: p starts one) lies.
        auto cache_row = [&](bool keys, int64_t p) {
          return keys ? key_plane + k_layout_of.offset(p) : value_plane + v_layout_of.offset(p);
        };
        // A cached row is the KV head's values alone (q8_0: blocks from its first value).
        const kernels::Q8Span span{0, d};
        // Token t's group of queries rounded for q8_0 keys.
        auto rounded = [&](int64_t t) {
          const int64_t at = first_segment + t * group * span.segments();
          return kernels::Q8Queries{attn_query_codes_.data() + at * kernels::kQ8Block, attn_query_scales_.data() + at,
                                    attn_query_sums_.data() + at};
        };
        if (keys_q8)
          for (int64_t t = 0; t < it.count; ++t) kernels::quantize_queries(queries(t), group, span, scale, rounded(t));
        for (int64_t u = it.unit0; u < it.unit1; ++u) {
          const int64_t p0 = u * kUnit, n_rows = std::min(kUnit, n_keys - p0);
          auto seen = [&](int64_t t) { return std::min<int64_t>(n_rows, toks[t].pos + 1 - p0); };  // <= 0: none
          // The cached rows of this KV head in the unit, in position order, for use(t, c0, upto, src): token t's
          // whole group of query heads reads rows [0, upto) of src (positions p0 + c0 on). A q8_0 cache is read in
          // place by every token (the integer kernels of kernels/attention_q8.h: key tiles, value tiles). f16 rows
          // are read in place by a single token (converted in registers); a block of several converts each chunk
          // to f32 once for all its tokens (src: f32 rows).
          // Each chunk brings into L2 the chunk kPrefetchAhead further along the item's stream (keys, then values,
          // of each unit in turn: two planes, read in order). Without it the stream stalls, even now that a head's
          // positions lie together (8 layers of the 2B-4T shape at depth 4096, q8_0: 6.0 against 4.4 ms); 4 or 8
          // chunks ahead measured no better than 2. (Into L1, prefetcht0, when rows were 680 bytes apart, the misses
          // queued behind L1's few miss buffers: 14.5 ms against 6.9 into L2.) The q8_0 kernels take those lines a
          // few per step as they run (kernels::PrefetchLines): issued all at once before each call, the burst
          // stalled on the miss buffers with nothing to overlap (half the attention loop's own samples). A single token
          // reading a unit's keys or values in one call (after prefetching 2 chunks of the next part) ran 8 layers
          // 0.84-0.91x the time but the whole model no faster (bitnet_bench_depth, docs/performance.md): dropped.
          // A chunk of the item's stream: keys then values of each unit, 32 rows at a time.
          struct ChunkAt {
            bool keys;
            int64_t unit, c0;
            const AttentionItem* item;
            int64_t n_keys;
            int64_t rows() const { return std::min(kUnit, n_keys - unit * kUnit); }
            bool next() {  // to the following chunk; false past the item's last
              if ((c0 += kChunkRows) < rows()) return true;
              c0 = 0;
              if (keys) return !(keys = false);
              keys = true;
              return ++unit < item->unit1;
            }
          };
          auto chunk_lines = [&](const ChunkAt& at) {
            const int64_t p = at.unit * kUnit + at.c0;
            return rows_lines(at.keys ? key_plane : value_plane, at.keys, p, std::min(kChunkRows, at.rows() - at.c0));
          };
          auto over_rows = [&](auto keys_type, auto&& use) {
            constexpr bool keys = decltype(keys_type)::value;
            const KvCacheType type = keys ? kv_types_.k : kv_types_.v;
            const int64_t row_bytes = (keys ? k_layout_of : v_layout_of).row_bytes();
            for (int64_t c0 = 0; c0 < n_rows; c0 += kChunkRows) {
              const int64_t nc = std::min(kChunkRows, n_rows - c0);
              // The chunk kPrefetchAhead after this one, taken by the q8_0 kernels as they run (at once before
              // an f16 chunk); at the item's start the ones before it too, at once.
              ChunkAt ahead{keys, u, c0, &it, n_keys};
              kernels::PrefetchLines lines;
              for (int64_t k = 1; k <= kPrefetchAhead && ahead.next(); ++k) {
                if (k == kPrefetchAhead) lines = chunk_lines(ahead);
                else if (u == it.unit0 && keys && c0 == 0) chunk_lines(ahead).drain();
              }
              if (type != KvCacheType::q8_0) lines.drain();  // the f16 kernels take no stream: at once
              const uint8_t* first = cache_row(keys, p0 + c0);
              if (type == KvCacheType::q8_0) {
                for (int64_t t = 0; t < it.count; ++t) {
                  const int64_t upto = std::min(nc, seen(t) - c0);
                  if (upto <= 0) continue;
                  if constexpr (keys) use(t, c0, upto, Q8KeyTiles{first, &lines});
                  else use(t, c0, upto, Q8ValueTiles{first, &lines});
                }
                lines.drain();  // what the calls left (a short chunk, or no token in it)
              } else if (it.count == 1) {
                use(0, c0, nc, F16Rows{reinterpret_cast<const uint16_t*>(first), d});
              } else {
                detail::kv_decode_rows(type, first, nc, row_bytes, 0, d, rows);
                for (int64_t t = 0; t < it.count; ++t) {
                  const int64_t upto = std::min(nc, seen(t) - c0);
                  if (upto > 0) use(t, c0, upto, rows);
                }
              }
            }
          };
          over_rows(std::true_type{}, [&](int64_t t, int64_t c0, int64_t upto, auto src) {
            float* out = scores + t * group * kUnit + c0;
            const float* x = queries(t);
            if constexpr (std::is_same_v<decltype(src), F16Rows>)
              vk.dot_rows_f16(src.rows, upto, src.stride, x, group, d, out, kUnit);
            else if constexpr (std::is_same_v<decltype(src), Q8KeyTiles>)
              aq.scores(src.tiles, upto, d, rounded(t), group, out, kUnit, src.prefetch);
            else
              vk.dot_rows(src, upto, d, x, group, d, out, kUnit);
          });
          // Each pair's softmax over the unit: the weights e^(s - m) replace the scores.
          for (int64_t t = 0; t < it.count; ++t) {
            const int64_t n = seen(t);
            for (int64_t h = 0; n > 0 && h < group; ++h) {
              const int64_t pair = t * group + h;
              float* s = scores + pair * kUnit;
              float* header = headers + pair * kPartialHeader;
              if (!keys_q8) mul(s, scale, s, n);  // (q8_0 scores come scaled)
              header[0] = vk.max(s, n);
              header[1] = static_cast<float>(vk.exp_shifted_sum(s, header[0], s, n));
              std::fill(values + pair * d, values + (pair + 1) * d, 0.0f);
            }
          }
          over_rows(std::false_type{}, [&](int64_t t, int64_t c0, int64_t upto, auto src) {
            const float* a = scores + t * group * kUnit + c0;
            float* y = values + t * group * d;
            if constexpr (std::is_same_v<decltype(src), F16Rows>)
              vk.axpy_rows_f16(a, kUnit, src.rows, upto, src.stride, y, group, d);
            else if constexpr (std::is_same_v<decltype(src), Q8ValueTiles>)
              aq.weighted_sum(a, kUnit, src.tiles, upto, d, y, group, src.prefetch);
            else
              vk.axpy_rows(a, kUnit, src, upto, d, y, group, d);
          });
          // Hand each partial on: kept for the second pass, or folded into the pair's state.
          for (int64_t t = 0; t < it.count; ++t) {
            if (seen(t) <= 0) continue;
            for (int64_t h = 0; h < group; ++h) {
              const int64_t pair = t * group + h;
              float* header = headers + pair * kPartialHeader;
              float* o = values + pair * d;
              float* state = states + pair * kPartialHeader;
              float* out = output(it.first + t, head0 + h);
              if (it.split) {
                float* keep = stored(it.first + t, head0 + h, u);
                std::copy(header, header + kPartialHeader, keep);
                std::copy(o, o + d, keep + kPartialHeader);
              } else if (u == 0) {
                std::copy(header, header + kPartialHeader, state);
                std::copy(o, o + d, out);
              } else {
                fold_partial(vk, state, out, header, o, d);
              }
            }
          }
        }
        if (!it.split)
          for (int64_t t = 0; t < it.count; ++t)
            for (int64_t h = 0; h < group; ++h)
              finish_pair(vk, states + (t * group + h) * kPartialHeader, output(it.first + t, head0 + h), d);
      }
    }
  });
  // Second pass: the split blocks' pairs fold their kept partials in unit order (one task per block and KV head:
  // its first range's item). Without a split item (short contexts, most decode steps) there is nothing to fold,
  // and no parallel region is spent on it.
  if (std::none_of(attn_items_.begin(), attn_items_.end(), [](const AttentionItem& it) { return it.split; })) return;
  pool_.parallel_for(static_cast<int64_t>(attn_items_.size()), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const AttentionItem& it = attn_items_[static_cast<size_t>(i)];
      if (!it.split || it.unit0 != 0) continue;
      const int64_t head0 = static_cast<int64_t>(it.kv_head) * group;
      for (int64_t t = it.first; t < it.first + it.count; ++t)
        for (int64_t h = head0; h < head0 + group; ++h) {
          float* out = output(t, h);
          const float* first = stored(t, h, 0);
          float state[kPartialHeader] = {first[0], first[1]};
          std::copy(first + kPartialHeader, first + partial_size, out);
          for (int64_t u = 1; u < units_of(batch[static_cast<size_t>(t)].pos + 1); ++u) {
            float* part = stored(t, h, u);
            fold_partial(vk, state, out, part, part + kPartialHeader, d);
          }
          finish_pair(vk, state, out, d);
        }
    }
  });
}

}  // namespace bitnet
