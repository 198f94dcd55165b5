#pragma once
// The GPU ternary layout and the arithmetic every GPU ternary kernel shares with its host reference (this
// header is included by host C++ and by nvcc; the packing itself is in gpu_layout.h).
//
// A row of K_pad weights (K_pad a multiple of 256, as QuantizedActivations pads) is cut into 16-byte chunks of
// 64 weights. Byte i (0..15) of a chunk holds the 2-bit codes (w + 1, so {0, 1, 2}) of its elements i, i+16,
// i+32, i+48 at bits 0-1, 2-3, 4-5, 6-7. So 32-bit word m of a chunk, shifted right by 2s and masked with
// 0x03030303, is four bytes holding the codes of elements 16s+4m .. 16s+4m+3: exactly activation word 4s+m.
// One `dp4a` (four int8 products into an int32) then needs no shuffle. Codes are 0..2, so they are valid
// signed bytes: dp4a(s8, s8) and mma.s8.s8 compute sum(code * x); the +1 offset is removed once per row and
// token with the activation sum (sum((w+1) x) - sum(x)), exact in int32 (|sum| <= 2 * 128 * K_pad < 2^31).
// Rows come in groups of 4 whose chunks interleave: chunk c of rows 4g..4g+3 are 64 consecutive bytes, so the
// 32 lanes of a warp (lane: row lane % 4, chunk lane / 4) read 512 consecutive bytes per load. Padding (columns
// past K, rows past the last row of a group) has code 1 (weight 0).
#include <cstdint>

#ifdef __CUDACC__
#define BITNET_HD __host__ __device__ __forceinline__
#else
#define BITNET_HD inline
#endif
#if defined(__CUDA_ARCH__)
#define BITNET_UNROLL _Pragma("unroll")
#else
#define BITNET_UNROLL
#endif

namespace bitnet::cuda {

inline constexpr int64_t kChunkWeights = 64;
inline constexpr int64_t kChunkBytes = 16;
inline constexpr int64_t kGpuRowGroup = 4;
inline constexpr int64_t kGpuKAlign = 256;

// Byte offset of chunk c of row n in a matrix of n_chunks chunks per row.
BITNET_HD int64_t gpu_chunk_offset(int64_t n, int64_t c, int64_t n_chunks) {
  return ((n / kGpuRowGroup * n_chunks + c) * kGpuRowGroup + n % kGpuRowGroup) * kChunkBytes;
}

BITNET_HD int32_t dp4a_s8(uint32_t a, uint32_t b, int32_t c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(static_cast<int>(a), static_cast<int>(b), c);
#else
  for (int j = 0; j < 4; ++j)
    c += static_cast<int32_t>(static_cast<int8_t>(a >> (8 * j))) * static_cast<int8_t>(b >> (8 * j));
  return c;
#endif
}

// acc + sum over the chunk's 64 elements of code * x, for the chunk's 4 words `w` and its 16 activation words.
BITNET_HD int32_t chunk_dot(const uint32_t (&w)[4], const uint32_t (&x)[16], int32_t acc) {
BITNET_UNROLL
  for (int s = 0; s < 4; ++s)
BITNET_UNROLL
    for (int m = 0; m < 4; ++m) acc = dp4a_s8((w[m] >> (2 * s)) & 0x03030303u, x[4 * s + m], acc);
  return acc;
}

}  // namespace bitnet::cuda
