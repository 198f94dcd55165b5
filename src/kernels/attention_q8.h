#pragma once
// Internal: attention's two products on a q8_0 KV cache, in integer arithmetic (the "attention_q8" family).
//
// A cached row is GGML q8_0: blocks of 32 values, each an f16 scale d and 32 int8 codes (value = code x d), from
// the row's start. A head reads values [first, first + n) of a row; they fall into segments, one per block they
// touch (Q8Span). Both products work segment by segment, so every integer part is exact and only the few float
// steps below round; they are specified operation by operation and every variant gives the same bits.
//
// Keys come in tiles of kQ8KeyTileRows rows of one head (head_dim values from a block's start, so segment s is block
// s), laid out for the scores' vector lanes: per segment, the 16 rows' f16 scales (kQ8KeyTileScaleBytes), then for each
// dword k of the block's codes (values 4k .. 4k + 3) the 16 rows' dwords in row order (64 bytes). A tile holds the
// same bytes as 16 q8_0 rows, transposed (q8_key_tile_put / q8_key_tile_get convert).
//
// Scores (query . key): each query is quantized once per segment with quantize_queries, as the cache's own blocks
// (e = max|x| / 127 over the segment, codes round(x x (1 / e)), half away from zero); then for row j and query q,
// over the segments s in order from acc = 0:
//     acc = fma(float(sum_i code_k[i] x code_q[i]), d_js x e'_qs, acc)
// where e'_qs = e_qs x score_scale (attention's 1 / sqrt(head_dim), folded in). As llama.cpp's q8_0 key products
// (its query is rounded to q8_0 too), with the query's scale kept in f32.
//
// Values come in tiles of kQ8ValueTileRows = kQ8SumRows rows of one head, laid out for the weighted sum's pairs: per
// segment, the 32 rows' f16 scales (kQ8ValueTileScaleBytes), then for each pair of rows (2i, 2i + 1) their 32 codes
// interleaved, code c of row 2i at byte 2c and of row 2i + 1 at 2c + 1 (64 bytes). Widened to int16, such a line is
// what vpdpwssd / vpmaddwd multiply by a pair of weights. A tile holds the same bytes as 32 q8_0 rows
// (q8_value_tile_put / q8_value_tile_get convert).
//
// Weighted sum of values (y_q += sum_j a_qj x value_j): rows are taken in groups of 32 from the first one passed.
// Within a group, for each query q and segment s, the weights w_j = a_qj x d_js (the value row's block scale
// folded in) are rounded to 15 bits against the group's largest |w|, m: code_j = round(w_j x (32767 / m)) (half
// to even). Then for each value i of the segment, y_q[i] = fma(float(sum_j code_j x code_v,j[i]), m x (1 / 32767),
// y_q[i]). In attention the weights are >= 0 (softmax numerators); if one is not finite (a broken model) the
// codes are 0 and the factor is NaN, so the output shows it. 15 bits against the group's largest weight: a
// relative step of 3e-5, far finer than the cached values' own 8 bits.
#include <cstdint>
#include <limits>

#include "kernels/dispatch.h"
#include "kernels/q8_0_block.h"

namespace bitnet::kernels {

// Rows per group of the weighted sum (the weights' rounding unit).
inline constexpr int64_t kQ8SumRows = 32;

// Key tiles: rows per tile, and the bytes of one segment of a tile (scales, then codes).
inline constexpr int64_t kQ8KeyTileRows = 16;
inline constexpr int64_t kQ8KeyTileScaleBytes = kQ8KeyTileRows * 2;
inline constexpr int64_t kQ8KeyTileSegmentBytes = kQ8KeyTileRows * kQ8BlockBytes;
// Segments (blocks) of a head of head_dim values, and the bytes of its tile.
inline constexpr int64_t q8_segments(int64_t head_dim) { return (head_dim + kQ8Block - 1) / kQ8Block; }
// Values in segment s of such a head (32, the last one fewer).
inline constexpr int64_t q8_segment_length(int64_t head_dim, int64_t s) {
  return head_dim - s * kQ8Block < kQ8Block ? head_dim - s * kQ8Block : kQ8Block;
}
inline constexpr int64_t q8_key_tile_bytes(int64_t head_dim) { return q8_segments(head_dim) * kQ8KeyTileSegmentBytes; }
// A q8_0 row of head_dim values (q8_segments blocks) to row `lane` of a key tile, and back.
void q8_key_tile_put(const uint8_t* row, int64_t head_dim, uint8_t* tile, int64_t lane);
void q8_key_tile_get(const uint8_t* tile, int64_t lane, int64_t head_dim, uint8_t* row);

// Value tiles: rows per tile (one group of the weighted sum), and the bytes of one segment of a tile.
inline constexpr int64_t kQ8ValueTileRows = kQ8SumRows;
inline constexpr int64_t kQ8ValueTileScaleBytes = kQ8ValueTileRows * 2;
inline constexpr int64_t kQ8ValueTileSegmentBytes = kQ8ValueTileRows * kQ8BlockBytes;
inline constexpr int64_t q8_value_tile_bytes(int64_t head_dim) {
  return q8_segments(head_dim) * kQ8ValueTileSegmentBytes;
}
// A q8_0 row of head_dim values to row `lane` of a value tile, and back.
void q8_value_tile_put(const uint8_t* row, int64_t head_dim, uint8_t* tile, int64_t lane);
void q8_value_tile_get(const uint8_t* tile, int64_t lane, int64_t head_dim, uint8_t* row);

// Values [first, first + n) of a q8_0 row, as segments: segment s lies in block first / 32 + s, from code
// offset(s), length(s) codes; it holds the head's values [start(s), start(s) + length(s)).
struct Q8Span {
  int64_t first, n;
  int64_t segments() const { return n <= 0 ? 0 : (first + n - 1) / kQ8Block - first / kQ8Block + 1; }
  int64_t block(int64_t s) const { return first / kQ8Block + s; }
  int64_t start(int64_t s) const { return s == 0 ? 0 : block(s) * kQ8Block - first; }
  int64_t offset(int64_t s) const { return s == 0 ? first % kQ8Block : 0; }
  int64_t length(int64_t s) const {
    const int64_t begin = first + start(s), end = (block(s) + 1) * kQ8Block;
    return (end < first + n ? end : first + n) - begin;
  }
};

// Queries quantized for the scores, g queries of span.n values, segments() per query; query q's segment s is
// at index q * segments + s. Caller-owned storage.
struct Q8Queries {
  int8_t* codes;   // 32 per segment, zero past its length
  float* scales;   // e'_qs (NaN when the segment holds a value that is not finite)
  int32_t* sums;   // sum of the segment's codes (the VNNI variant's correction for its unsigned operand)
};

// Quantizes g queries (n floats each, contiguous) for span; one plain function for every variant.
void quantize_queries(const float* x, int64_t g, Q8Span span, float score_scale, const Q8Queries& out);

// Cache lines [next, end) for a kernel to bring into L2 while it runs: the caller's stream of cached rows further
// on. The kernels take, per step of their loops, about as many lines as that step reads from its tiles, so the
// misses overlap their arithmetic and the stream ahead advances at the pace they consume it. A burst of a whole
// 32-row chunk (68 lines) before each call stalled on the miss buffers instead: half of the attention loop's own
// samples, 1.7% of decode at depth 4096 (docs/performance.md). What a call leaves, the caller drains. Addresses are
// integers: past the cache's end a prefetch is harmless where a pointer would not be. Only a hint: results never
// depend on it.
struct PrefetchLines {
  uintptr_t next = 0, end = 0;
  void take(int64_t lines) {
    for (int64_t i = 0; i < lines && next < end; ++i, next += 64)
      __builtin_prefetch(reinterpret_cast<const void*>(next), 0, 2);
  }
  void drain() { take(std::numeric_limits<int64_t>::max()); }
};
// For kernels whose callers may pass no stream.
inline void take_lines(PrefetchLines* lines, int64_t n) {
  if (lines != nullptr) lines->take(n);
}

struct AttentionQ8Kernels {
  // out[q * out_stride + j] = the score of key row j against query q, for g queries quantized for Q8Span{0,
  // head_dim}; the rows are the tiles' from `tiles` on (the last tile's rows past n_rows are read, not stored).
  // `prefetch` (may be null): lines to take while running (PrefetchLines).
  void (*scores)(const uint8_t* tiles, int64_t n_rows, int64_t head_dim, const Q8Queries& queries, int64_t g,
                 float* out, int64_t out_stride, PrefetchLines* prefetch);
  // y_q (head_dim floats, g outputs contiguous) += the weighted sum of the values of rows [0, n_rows) of the value
  // tiles from `tiles` on, weights a[q * a_stride + j] (the last tile's rows past n_rows are read with weight 0).
  void (*weighted_sum)(const float* a, int64_t a_stride, const uint8_t* tiles, int64_t n_rows, int64_t head_dim,
                       float* y, int64_t g, PrefetchLines* prefetch);
};

const Family<AttentionQ8Kernels>& attention_q8_family();
inline const AttentionQ8Kernels& attention_q8_kernels() { return attention_q8_family().get(); }

}  // namespace bitnet::kernels
