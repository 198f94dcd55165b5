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

// Groups of 32 in order: each group's exact int32 dot, times its scale, added in float.
void gemm_i4(const DenseI4Args& a) {
  for (int64_t t = 0; t < a.tokens; ++t)
    for (int64_t n = a.row_begin; n < a.row_end; ++n) {
      float acc = 0.0f;
      for (int64_t g = 0; g < a.k_pad; g += kDenseI4Group) {
        int32_t dot = 0;
        for (int64_t k = g; k < g + kDenseI4Group; ++k) {
          const int32_t u = (a.w[dense_i4_offset(n, k, a.k_pad)] >> dense_i4_shift(k)) & 0xf;
          dot += (u - 8) * a.x[t * a.x_stride + k];
        }
        acc += f16_to_f32(a.scales[dense_i4_scale_index(n, g, a.k_pad)]) * static_cast<float>(dot);
      }
      a.y[t * a.y_stride + n] = acc * a.dequant[t];
    }
}
}  // namespace

extern const DenseKernels kDenseKernels;
const DenseKernels kDenseKernels = {gemm_i8, gemm_f16, gemm_i4};

}  // namespace bitnet::kernels::ref
