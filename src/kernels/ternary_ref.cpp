// Scalar reference of the ternary kernel: decodes each code and multiplies, no offset trick. Obviously right,
// and the definition every other variant must match bit for bit.
#include "kernels/ternary.h"
#include "kernels/ternary_base3.h"

namespace bitnet::kernels::ref {

namespace {
void gemm(const TernaryGemmArgs& a) {
  const int64_t k_pad = a.k_blocks * kTernaryBlock;
  for (int64_t t = 0; t < a.tokens; ++t) {
    const int8_t* x = a.x + t * a.x_stride;
    for (int64_t n = a.row_begin; n < a.row_end; ++n) {
      int32_t dot = 0;
      for (int64_t k = 0; k < k_pad; ++k) {
        const int64_t block = k / kTernaryBlock, e = k % kTernaryBlock;
        const uint8_t byte = a.w[ternary_block_offset(n, block, a.k_blocks) + e % 64];
        const int code = (byte >> (2 * (e / 64))) & 3;
        dot += (code - 1) * x[k];
      }
      a.y[t * a.y_stride + n] = static_cast<float>(dot) * a.scale[t];
    }
  }
}
}  // namespace

extern const TernaryKernels kTernaryKernels;
const TernaryKernels kTernaryKernels = {gemm, gemm_base3, encode_base3, false};

}  // namespace bitnet::kernels::ref
