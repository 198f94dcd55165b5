// Internal: the body of the n-bit kernel family, included once per ISA file with BITNET_VARIANT and
// BITNET_NBIT_SIMD (0: plain loops, the reference; 1: `omp simd` loops the compiler vectorizes). No include
// guard on purpose.
#include <cstdint>

#include "kernels/nbit.h"

#if BITNET_NBIT_SIMD
#define BITNET_PRAGMA(x) _Pragma(#x)
#define BITNET_SIMD_SUM(v) BITNET_PRAGMA(omp simd reduction(+ : v))
#define BITNET_SIMD _Pragma("omp simd")
#else
#define BITNET_SIMD_SUM(v)
#define BITNET_SIMD
#endif

namespace bitnet::kernels::BITNET_VARIANT {
namespace {

// Codes of one 64-weight chunk (8 * Bits bytes) into 64 bytes.
template <int Bits>
inline void unpack_chunk(const uint8_t* src, uint8_t* codes) {
  constexpr int kBytes = 8 * Bits;
  constexpr uint8_t kMask = static_cast<uint8_t>((1u << Bits) - 1);
  for (int s = 0; s < 8 / Bits; ++s) {
    BITNET_SIMD for (int j = 0; j < kBytes; ++j) codes[kBytes * s + j] = static_cast<uint8_t>((src[j] >> (Bits * s)) & kMask);
  }
}

inline int32_t dot64(const uint8_t* codes, const int8_t* x) {
  int32_t dot = 0;
  BITNET_SIMD_SUM(dot) for (int j = 0; j < 64; ++j) dot += static_cast<int32_t>(codes[j]) * x[j];
  return dot;
}

template <int Bits>
void gemm_bits(const NbitArgs& a) {
  alignas(64) uint8_t codes[64];
  const int64_t chunks_per_group = a.group / 64;
  for (int64_t n = a.row_begin; n < a.row_end; ++n) {
    const uint8_t* row = a.w + n * a.row_bytes;
    for (int64_t t = 0; t < a.tokens; ++t) {
      const int8_t* x = a.x + t * a.x_stride;
      float acc = 0.0f;
      for (int64_t g = 0; g < a.groups_per_row; ++g) {
        int32_t dot = 0;
        for (int64_t c = 0; c < chunks_per_group; ++c) {
          const int64_t chunk = g * chunks_per_group + c;
          unpack_chunk<Bits>(row + chunk * 8 * Bits, codes);
          dot += dot64(codes, x + chunk * 64);
        }
        const int64_t si = n * a.scale_row_stride + g * a.scale_group_stride;
        const int32_t xsum = a.group_sums[t * a.groups_per_row + g];
        const int32_t centered = Bits == 1 ? 2 * dot - xsum : dot - a.zero_points[si] * xsum;
        acc += a.scales[si] * static_cast<float>(centered);
      }
      a.y[t * a.y_stride + n] = acc * a.dequant[t];
    }
  }
}

void gemm(const NbitArgs& a) {
  switch (a.bits) {
    case 1: return gemm_bits<1>(a);
    case 2: return gemm_bits<2>(a);
    case 4: return gemm_bits<4>(a);
    case 8: return gemm_bits<8>(a);
    default: return;
  }
}

}  // namespace

extern const NbitKernels kNbitKernels;
const NbitKernels kNbitKernels = {gemm};

}  // namespace bitnet::kernels::BITNET_VARIANT

#undef BITNET_SIMD_SUM
#undef BITNET_SIMD
#ifdef BITNET_PRAGMA
#undef BITNET_PRAGMA
#endif
