// Per-token int8 quantization (BitNet's absmax), fused with the RMSNorm before it and, for the FFN's down
// projection, with the gate act(gate) * up: one block per token row, the row read three times from L1/L2
// (sum of squares, max, quantize) and never written out normalized.
//
// Bit-exactness with the CPU: the max and the int8 rounding (rint: half to even) are order-independent; the
// elementwise products use __fmul_rn in the CPU's order. Only the double sum of squares is summed in another
// order: its last bits may differ, which changes the f32 1/rms only when it lands within ~1e-16 of a rounding
// boundary of the f32 cast, so the quantized rows match the CPU's except with negligible probability.
#include <bitnet/error.h>

#include "cuda/block_reduce.cuh"
#include "cuda/kernels.h"

namespace bitnet::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float relu2(float v) {
  const float r = v > 0.0f ? v : (v != v ? v : 0.0f);  // NaN stays NaN, as the CPU's
  return __fmul_rn(r, r);
}
__device__ __forceinline__ float silu(float v) {
  // The CPU evaluates exp with its own polynomial: equal within ~1 ulp, not bit for bit.
  return __fmul_rn(v, __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-v))));
}

__device__ __forceinline__ float quant_value(float v) {
  const float r = rintf(v);
  return r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r);
}

__global__ void __launch_bounds__(kThreads) norm_quant_kernel(NormQuantArgs a) {
  const int j = static_cast<int>(blockIdx.x);
  const int64_t src = a.row_index != nullptr ? a.row_index[j] : j;
  float* x = a.x + src * a.x_stride;
  if (a.act != GateAct::none) {
    const float* up = a.up + src * a.up_stride;
    for (int64_t i = threadIdx.x; i < a.k; i += blockDim.x) {
      const float gv = a.act == GateAct::relu2 ? relu2(x[i]) : silu(x[i]);
      x[i] = __fmul_rn(gv, up[i]);  // the CPU's act(gate) then gate * up
    }
    __syncthreads();  // the block's own global writes are visible to it after the barrier
  }
  float inv = 1.0f;
  if (a.g != nullptr) {
    double ss = 0;
    for (int64_t i = threadIdx.x; i < a.k; i += blockDim.x) {
      const double v = x[i];
      ss += v * v;  // exact product (24-bit mantissas), so only the summation order differs from the CPU
    }
    ss = block_reduce(ss, SumOp{});
    inv = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(a.k) + static_cast<double>(a.eps)));
  }
  float m = 0.0f;
  for (int64_t i = threadIdx.x; i < a.k; i += blockDim.x) {
    const float v = a.g != nullptr ? __fmul_rn(__fmul_rn(x[i], inv), a.g[i]) : x[i];
    m = fmaxf(m, fabsf(v));
  }
  m = block_reduce(m, MaxOp{});
  const float s = __fdiv_rn(127.0f, fmaxf(m, 1e-5f));  // kernels::kActQuantMaxFloor
  int8_t* q = a.q + static_cast<int64_t>(j) * a.k_pad;
  int32_t sum = 0;
  for (int64_t i = threadIdx.x; i < a.k; i += blockDim.x) {
    const float v = a.g != nullptr ? __fmul_rn(__fmul_rn(x[i], inv), a.g[i]) : x[i];
    const auto qi = static_cast<int32_t>(quant_value(__fmul_rn(v, s)));
    q[i] = static_cast<int8_t>(qi);
    sum += qi;
  }
  for (int64_t i = a.k + threadIdx.x; i < a.k_pad; i += blockDim.x) q[i] = 0;
  sum = block_reduce(sum, SumOp{});
  if (threadIdx.x == 0) {
    a.dequant[j] = __fdiv_rn(1.0f, s);
    a.sums[j] = sum;
  }
}

__global__ void __launch_bounds__(kThreads) rms_norm_kernel(const float* __restrict__ x, int64_t x_stride,
                                                            const int32_t* row_index, const float* __restrict__ g,
                                                            float eps, int64_t k, float* __restrict__ out) {
  const int j = static_cast<int>(blockIdx.x);
  const float* row = x + (row_index != nullptr ? row_index[j] : j) * x_stride;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) {
    const double v = row[i];
    ss += v * v;
  }
  ss = block_reduce(ss, SumOp{});
  const auto scale = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(k) + static_cast<double>(eps)));
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) out[j * k + i] = __fmul_rn(__fmul_rn(row[i], scale), g[i]);
}

}  // namespace

void norm_quant(const NormQuantArgs& a, cudaStream_t stream) {
  BITNET_CHECK(a.k > 0 && a.k <= a.k_pad && a.k_pad % 16 == 0, "[cuda] norm_quant: k {} with padding {}", a.k, a.k_pad);
  if (a.rows == 0) return;
  norm_quant_kernel<<<a.rows, kThreads, 0, stream>>>(a);
  check_launch("norm_quant");
}

void rms_norm_rows(const float* x, int64_t x_stride, const int32_t* row_index, int rows, const float* g, float eps,
                   int64_t k, float* out, cudaStream_t stream) {
  if (rows == 0) return;
  rms_norm_kernel<<<rows, kThreads, 0, stream>>>(x, x_stride, row_index, g, eps, k, out);
  check_launch("rms_norm_rows");
}

}  // namespace bitnet::cuda
