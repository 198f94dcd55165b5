#pragma once
// Internal: GGML's q8_0 block, the KV cache's 8-bit row format (runtime/kv_cache_codec.h writes it; the vector and
// attention_q8 kernels read it): per 32 values an f16 scale d, then 32 int8 codes; value = code x d. Blocks run
// from a row's start.
#include <cstdint>

namespace bitnet::kernels {

inline constexpr int64_t kQ8Block = 32;
inline constexpr int64_t kQ8BlockBytes = 2 + kQ8Block;

}  // namespace bitnet::kernels
