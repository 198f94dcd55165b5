// Ternary x int8 GEMV for decode (1..8 tokens): memory-bound, so each weight byte is read once per call, in
// 512-byte warp-wide loads, and multiplied with every token's activations (read through the L1: 4 lanes share
// each 64-byte activation chunk).
#include <bitnet/error.h>

#include "cuda/gpu_layout_math.h"
#include "cuda/kernels.h"
#include "cuda/ternary_epilogue.cuh"

namespace bitnet::cuda {

namespace {

constexpr int kGemvWarps = 4;  // small blocks: a 2560-row matrix is still 160 blocks over all SMs

// Weights are streamed once: no L1 allocation (the activations keep the L1).
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// One warp per group of 4 rows: lane = 4 * chunk + row, so a warp load covers chunks c..c+7 of all 4 rows.
template <int NT>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_kernel(DevTernary w, DevActs x, float* __restrict__ y,
                                                               int64_t y_stride, bool accumulate) {
  const int64_t group = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int64_t groups = (w.rows + kGpuRowGroup - 1) / kGpuRowGroup;
  if (group >= groups) return;  // whole warps leave together: the shuffles below see full warps
  const int64_t n_chunks = w.k_pad / kChunkWeights;
  const int r = lane & 3;
  const uint4* wp = reinterpret_cast<const uint4*>(w.w) + group * n_chunks * kGpuRowGroup + r;
  int32_t acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0;
#pragma unroll 4
  for (int64_t c = lane >> 2; c < n_chunks; c += 8) {
    const uint4 wv = load_stream(wp + c * kGpuRowGroup);
    const uint32_t wr[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const uint4* xp = reinterpret_cast<const uint4*>(x.q + t * x.k_pad) + c * 4;
      const uint4 x0 = __ldg(xp), x1 = __ldg(xp + 1), x2 = __ldg(xp + 2), x3 = __ldg(xp + 3);
      const uint32_t xw[16] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w,
                               x2.x, x2.y, x2.z, x2.w, x3.x, x3.y, x3.z, x3.w};
      acc[t] = chunk_dot(wr, xw, acc[t]);
    }
  }
  // Lanes r, r+4, ..., r+28 hold partial sums of row 4 * group + r.
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], 4);
    acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], 8);
    acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], 16);
  }
  const int64_t n = group * kGpuRowGroup + r;
  if (lane < 4 && n < w.rows) {
#pragma unroll
    for (int t = 0; t < NT; ++t) store_ternary_output(w, x, t, n, acc[t], y, y_stride, accumulate);
  }
}

template <int NT>
void launch(const DevTernary& w, const DevActs& x, float* y, int64_t y_stride, bool accumulate, cudaStream_t s) {
  const int64_t groups = (w.rows + kGpuRowGroup - 1) / kGpuRowGroup;
  const auto blocks = static_cast<unsigned>((groups + kGemvWarps - 1) / kGemvWarps);
  gemv_kernel<NT><<<blocks, kGemvWarps * 32, 0, s>>>(w, x, y, y_stride, accumulate);
}

}  // namespace

void ternary_gemv(const DevTernary& w, const DevActs& x, int tokens, float* y, int64_t y_stride, bool accumulate,
                  cudaStream_t stream) {
  BITNET_CHECK(x.k_pad == w.k_pad, "[cuda] ternary_gemv: activations padded to {}, weights to {}", x.k_pad, w.k_pad);
  switch (tokens) {
    case 1: launch<1>(w, x, y, y_stride, accumulate, stream); break;
    case 2: launch<2>(w, x, y, y_stride, accumulate, stream); break;
    case 3: launch<3>(w, x, y, y_stride, accumulate, stream); break;
    case 4: launch<4>(w, x, y, y_stride, accumulate, stream); break;
    case 5: launch<5>(w, x, y, y_stride, accumulate, stream); break;
    case 6: launch<6>(w, x, y, y_stride, accumulate, stream); break;
    case 7: launch<7>(w, x, y, y_stride, accumulate, stream); break;
    case 8: launch<8>(w, x, y, y_stride, accumulate, stream); break;
    default: fail("[cuda] ternary_gemv handles 1..{} tokens, got {}", kGemvMaxTokens, tokens);
  }
  check_launch("ternary_gemv");
}

void ternary_matmul(const DevTernary& w, const DevActs& x, int tokens, float* y, int64_t y_stride, bool accumulate,
                    cudaStream_t stream) {
  if (tokens <= kGemvMaxTokens) {
    ternary_gemv(w, x, tokens, y, y_stride, accumulate, stream);
  } else {
    ternary_gemm(w, x, tokens, y, y_stride, accumulate, stream);
  }
}

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) fail("[cuda] launching {} failed: {}", what, cudaGetErrorString(e));
}

}  // namespace bitnet::cuda
