#pragma once
// Internal: rows of the engine's KV cache in its element type (engine.h KvCacheType). f16 is the f32 value
// rounded to half precision; q8_0 is GGML's block: per 32 values an f16 scale d = max|x| / 127 and 32 int8
// q = round(x / d) (half away from zero, as ggml's reference quantizer), read back as q * d, each KV head's values
// on their own (blocks from the head's first value). Unlike GGML's tensors, a head's width need not be a multiple of
// 32 (its last block is shorter).
#include <bitnet/engine.h>

#include <cstdint>

#include "kernels/attention_q8.h"
#include "kernels/q8_0_block.h"

namespace bitnet::detail {

using kernels::kQ8Block;
using kernels::kQ8BlockBytes;

// The bytes of n values in the cache's type. q8_0 values are blocks of 32 from the first (the engine encodes each
// head on its own), the last block shorter when n is not a multiple of 32.
int64_t kv_values_bytes(KvCacheType type, int64_t n);
// n values, to kv_values_bytes(type, n) bytes at row.
void kv_encode(KvCacheType type, const float* x, int64_t n, uint8_t* row);
// How a plane holds its positions: rows of kv_values_bytes, or q8_0 tiles transposed for attention's kernels
// (kernels/attention_q8.h): keys in tiles of kQ8KeyTileRows for the scores, values in tiles of kQ8ValueTileRows for
// the weighted sum.
enum class KvForm : uint8_t { rows, key_tiles, value_tiles };

// Where one KV head's positions lie in its plane of the cache (engine.h). A position's bytes in row form (what a
// saved sequence holds) are the same q8_0 blocks whatever the form.
struct KvPlane {
  KvCacheType type;
  int64_t head_dim;
  KvForm form;
  int64_t row_bytes() const { return kv_values_bytes(type, head_dim); }
  // Positions per tile (1 for rows) and the bytes of one tile (or row). Inline: attention asks per chunk.
  int64_t tile_rows() const {
    return form == KvForm::key_tiles     ? kernels::kQ8KeyTileRows
           : form == KvForm::value_tiles ? kernels::kQ8ValueTileRows
                                         : 1;
  }
  int64_t tile_bytes() const {
    return form == KvForm::key_tiles     ? kernels::q8_key_tile_bytes(head_dim)
           : form == KvForm::value_tiles ? kernels::q8_value_tile_bytes(head_dim)
                                         : row_bytes();
  }
  // The plane's bytes for `positions` (rounded up to whole tiles).
  int64_t bytes(int64_t positions) const { return (positions + tile_rows() - 1) / tile_rows() * tile_bytes(); }
  // Where position pos begins: its row, or its tile.
  int64_t offset(int64_t pos) const { return pos / tile_rows() * tile_bytes(); }
  // The bytes from offset(pos) that hold positions [pos, pos + n) (tiles: pos starts a tile).
  int64_t span(int64_t pos, int64_t n) const { return bytes(pos + n) - offset(pos); }
};
// One position's head_dim values x to the plane at `base`, and back.
void kv_encode_at(const KvPlane& plane, const float* x, uint8_t* base, int64_t pos);
void kv_decode_at(const KvPlane& plane, const uint8_t* base, int64_t pos, float* x);
// One position's bytes in row form, out of the plane and into it.
void kv_get_row(const KvPlane& plane, const uint8_t* base, int64_t pos, uint8_t* row);
void kv_put_row(const KvPlane& plane, const uint8_t* row, uint8_t* base, int64_t pos);

// Values [first, first + n) of each of n_rows rows that lie row_bytes apart, to out as rows of n floats.
void kv_decode_rows(KvCacheType type, const uint8_t* rows, int64_t n_rows, int64_t row_bytes, int64_t first,
                    int64_t n, float* out);
// Values [first, first + n) of a row.
inline void kv_decode(KvCacheType type, const uint8_t* row, int64_t first, int64_t n, float* out) {
  kv_decode_rows(type, row, 1, 0, first, n, out);
}

}  // namespace bitnet::detail
