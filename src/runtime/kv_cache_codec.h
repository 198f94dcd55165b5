#pragma once
// Internal: rows of the engine's KV cache in its element type (engine.h KvCacheType). f16 is the f32 value
// rounded to half precision; q8_0 is GGML's block: per 32 values an f16 scale d = max|x| / 127 and 32 int8
// q = round(x / d) (half away from zero, as ggml's reference quantizer), read back as q * d. Unlike GGML's
// tensors, a row's length need not be a multiple of 32.
#include <bitnet/engine.h>

#include <cstdint>

#include "kernels/q8_0_block.h"

namespace bitnet::detail {

using kernels::kQ8Block;
using kernels::kQ8BlockBytes;

// Rows take kv_cache_row_bytes (engine.h). q8_0 rows are blocks of 32 from the row's start (a head may begin
// mid-block: head_dim need not be a multiple of 32); the last block may be shorter.
void kv_encode(KvCacheType type, const float* x, int64_t n, uint8_t* row);
// Values [first, first + n) of each of n_rows rows that lie row_bytes apart, to out as rows of n floats.
void kv_decode_rows(KvCacheType type, const uint8_t* rows, int64_t n_rows, int64_t row_bytes, int64_t first,
                    int64_t n, float* out);
// Values [first, first + n) of a row.
inline void kv_decode(KvCacheType type, const uint8_t* row, int64_t first, int64_t n, float* out) {
  kv_decode_rows(type, row, 1, 0, first, n, out);
}

}  // namespace bitnet::detail
