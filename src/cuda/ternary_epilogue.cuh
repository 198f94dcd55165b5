#pragma once
// The output of every ternary kernel, in the CPU's rounding order (no FMA contraction: __fmul_rn / __fadd_rn):
// y = (float(dot - sum(x)) * (dequant[t] * tensor_scale[n])) * row_scale[n], then y = y_old + y for the residual.
#include "cuda/kernels.h"

namespace bitnet::cuda {

__device__ __forceinline__ void store_ternary_output(const DevTernary& w, const DevActs& x, int t, int64_t n,
                                                     int32_t acc, float* y, int64_t y_stride, bool accumulate) {
  const float scale = __fmul_rn(x.dequant[t], w.tensor_scale[n]);
  float v = __fmul_rn(__fmul_rn(__int2float_rn(acc - x.sums[t]), scale), w.row_scale[n]);
  float* out = y + t * y_stride + n;
  if (accumulate) v = __fadd_rn(*out, v);
  *out = v;
}

}  // namespace bitnet::cuda
