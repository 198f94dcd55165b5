#pragma once
// Internal: the weight prefetch of the x86 multi-token tiles (ternary, int8 and int4). `static` on purpose, as in
// x86_hsum.h: each ISA file gets its own copy.
//
// With several tokens (a batched decode step, prefill) a tile consumes the weights slower than the hardware
// prefetcher expects, and a row group's second token tile rereads its rows, so the stream from DRAM stalls. The
// first token tile of each row group therefore prefetches into L2 the same block of the group kPrefetchGroupsAhead
// further on (8 tokens on 6912 x 2560 ternary weights: 455 us without, 355 with; the f16 head at 8 tokens, 36.6
// ms against 26.1). One token (decode's GEMV) streams at full rate without it and measured no better with it.
#include <immintrin.h>

#include <cstdint>

namespace bitnet::kernels {

static constexpr int64_t kPrefetchGroupsAhead = 4;
// Bytes of one block of a 4-row group in the ternary, int8 and int4 layouts (each file asserts its own).
static constexpr int64_t kPrefetchBlockBytes = 256;

// The 256 bytes (a block of a 4-row group: 4 lines) at base + offset, into L2. The address is computed as an
// integer: near a matrix's end it lies past the matrix, where a prefetch is harmless but a pointer would not be.
static inline void prefetch_group_block(const void* base, int64_t offset) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(offset);
  for (int64_t line = 0; line < kPrefetchBlockBytes; line += 64)
    _mm_prefetch(reinterpret_cast<const char*>(address + static_cast<uintptr_t>(line)), _MM_HINT_T1);
}

}  // namespace bitnet::kernels
