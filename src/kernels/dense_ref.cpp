// Scalar reference of the dense kernels.
#include <bitnet/dtype.h>

#include "kernels/dense.h"

namespace bitnet::kernels::ref {

namespace {
void gemm_i8(const DenseI8Args& a) {
  for (int64_t t = 0; t < a.tokens; ++t)
    for (int64_t n = a.row_begin; n < a.row_end; ++n) {
      int32_t dot = 0;
      for (int64_t k = 0; k < a.k_pad; ++k)
        dot += (static_cast<int32_t>(a.w[dense_i8_offset(n, k, a.k_pad)]) - 128) * a.x[t * a.x_stride + k];
      a.y[t * a.y_stride + n] = static_cast<float>(dot) * a.scale[t] * a.row_scale[n];
    }
}

void gemm_f16(const DenseF16Args& a) {
  for (int64_t t = 0; t < a.tokens; ++t)
    for (int64_t n = a.row_begin; n < a.row_end; ++n) {
      double dot = 0;
      for (int64_t k = 0; k < a.k; ++k)
        dot += static_cast<double>(f16_to_f32(a.w[n * a.k_stride + k])) * a.x[t * a.x_stride + k];
      a.y[t * a.y_stride + n] = static_cast<float>(dot);
    }
}
}  // namespace

extern const DenseKernels kDenseKernels;
const DenseKernels kDenseKernels = {gemm_i8, gemm_f16};

}  // namespace bitnet::kernels::ref
