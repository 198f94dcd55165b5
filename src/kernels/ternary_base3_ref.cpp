// Scalar reference of the base-3 ternary kernel: decodes each weight's code through the byte code's tables and
// multiplies, no offset trick. The definition every base-3 variant must match bit for bit (and, since both
// layouts hold the same weights, what the 2-bit kernels give too).
#include "kernels/ternary_base3.h"

namespace bitnet::kernels::ref {

namespace {
// Code (w + 1) of element k of row n.
int base3_code(const TernaryGemmArgs& a, int64_t n, int64_t k) {
  const int64_t supers = base3_superblocks(a.k_blocks);
  if (k < supers * kBase3SuperWeights) {
    const int64_t s = k / kBase3SuperWeights, e = k % kBase3SuperWeights;
    const uint8_t byte = a.w[base3_byte_offset(n, s, e % kBase3SuperBytes, a.k_blocks)];
    return base3_decode(kBase3, byte)[static_cast<size_t>(e / kBase3SuperBytes)];
  }
  const int64_t t = (k - supers * kBase3SuperWeights) / kTernaryBlock, e = k % kTernaryBlock;
  const uint8_t byte = a.w[base3_tail_offset(n, t, a.k_blocks) + e % 64];
  return (byte >> (2 * (e / 64))) & 3;
}
}  // namespace

void gemm_base3(const TernaryGemmArgs& a) {
  const int64_t k_pad = a.k_blocks * kTernaryBlock;
  for (int64_t t = 0; t < a.tokens; ++t) {
    const int8_t* x = a.x + t * a.x_stride;
    for (int64_t n = a.row_begin; n < a.row_end; ++n) {
      int32_t dot = 0;
      for (int64_t k = 0; k < k_pad; ++k) dot += (base3_code(a, n, k) - 1) * x[k];
      a.y[t * a.y_stride + n] = static_cast<float>(dot) * a.scale[t];
    }
  }
}

void encode_base3(const uint8_t* tuples, uint8_t* bytes, int64_t n) {
  for (int64_t i = 0; i < n; ++i) bytes[i] = kBase3.encode[tuples[i]];
}

}  // namespace bitnet::kernels::ref
