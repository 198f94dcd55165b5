// The embedding lookup and the output head: f16 weights x f32 activations (the tied embedding, more than half
// of the bytes a decoded token reads) and int8 weights x int8 activations (the head's int8 copy). Both are
// GEMVs over at most 8 tokens: one warp per row, the row streamed once in 16-byte loads.
#include <bitnet/error.h>
#include <cuda_fp16.h>

#include "cuda/kernels.h"

namespace bitnet::cuda {

namespace {

constexpr int kHeadWarps = 8;
constexpr int kHeadMaxTokens = 8;

__global__ void embed_kernel(const void* __restrict__ table, bool is_f16, DevBatch b, int64_t hidden,
                             float* __restrict__ x) {
  const int t = static_cast<int>(blockIdx.x);
  const int64_t row = static_cast<int64_t>(b.token[t]) * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    x[t * hidden + i] = is_f16 ? __half2float(static_cast<const __half*>(table)[row + i])
                               : static_cast<const float*>(table)[row + i];
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <int NT>
__global__ void __launch_bounds__(kHeadWarps * 32) head_f16_kernel(const __half* __restrict__ w, int64_t rows, int64_t k,
                                                                  const float* __restrict__ h, float* __restrict__ y,
                                                                  int64_t y_stride) {
  const int64_t n = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x & 31);
  if (n >= rows) return;
  const __half* row = w + n * k;
  float acc[NT] = {};
  const int64_t k8 = (k % 8 == 0) ? k : 0;  // 16-byte loads need rows that start 16-byte aligned
  for (int64_t i = 8 * lane; i < k8; i += 256) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(row + i));
    const __half2* hv = reinterpret_cast<const __half2*>(&raw);
    float wf[8];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 f = __half22float2(hv[e]);
      wf[2 * e] = f.x;
      wf[2 * e + 1] = f.y;
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const float4 a = __ldg(reinterpret_cast<const float4*>(h + t * k + i));
      const float4 bq = __ldg(reinterpret_cast<const float4*>(h + t * k + i + 4));
      acc[t] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * bq.x + wf[5] * bq.y + wf[6] * bq.z +
                wf[7] * bq.w;
    }
  }
  for (int64_t i = k8 + lane; i < k; i += 32) {  // rows of a length that is not a multiple of 8
    const float wv = __half2float(row[i]);
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[t] += wv * h[t * k + i];
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0) y[t * y_stride + n] = s;
  }
}

template <int NT>
__global__ void __launch_bounds__(kHeadWarps * 32) head_int8_kernel(const uint8_t* __restrict__ w,
                                                                   const float* __restrict__ row_scale, int64_t rows,
                                                                   DevActs x, float* __restrict__ y, int64_t y_stride) {
  const int64_t n = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x & 31);
  if (n >= rows) return;
  const uint4* row = reinterpret_cast<const uint4*>(w + n * x.k_pad);
  int32_t acc[NT] = {};
  for (int64_t c = lane; c < x.k_pad / 16; c += 32) {
    const uint4 raw = __ldg(row + c);
    // Stored as w + 128: flipping the top bit of each byte gives w as a signed byte.
    const uint32_t wr[4] = {raw.x ^ 0x80808080u, raw.y ^ 0x80808080u, raw.z ^ 0x80808080u, raw.w ^ 0x80808080u};
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x.q + t * x.k_pad) + c);
      acc[t] = __dp4a(static_cast<int>(wr[0]), static_cast<int>(xv.x), acc[t]);
      acc[t] = __dp4a(static_cast<int>(wr[1]), static_cast<int>(xv.y), acc[t]);
      acc[t] = __dp4a(static_cast<int>(wr[2]), static_cast<int>(xv.z), acc[t]);
      acc[t] = __dp4a(static_cast<int>(wr[3]), static_cast<int>(xv.w), acc[t]);
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], off);
    // The CPU's float(dot) * scale[t] * row_scale[n], left to right.
    if (lane == 0) y[t * y_stride + n] = __fmul_rn(__fmul_rn(__int2float_rn(acc[t]), x.dequant[t]), row_scale[n]);
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>((rows + kHeadWarps - 1) / kHeadWarps); }

template <int NT>
void launch_f16(const uint16_t* w, int64_t rows, int64_t k, const float* h, float* y, int64_t y_stride, cudaStream_t s) {
  head_f16_kernel<NT><<<row_blocks(rows), kHeadWarps * 32, 0, s>>>(reinterpret_cast<const __half*>(w), rows, k, h, y,
                                                                    y_stride);
}
template <int NT>
void launch_i8(const uint8_t* w, const float* rs, int64_t rows, const DevActs& x, float* y, int64_t y_stride,
               cudaStream_t s) {
  head_int8_kernel<NT><<<row_blocks(rows), kHeadWarps * 32, 0, s>>>(w, rs, rows, x, y, y_stride);
}

}  // namespace

void embed(const void* embedding, bool is_f16, const DevBatch& b, int64_t hidden, float* x, cudaStream_t stream) {
  if (b.tokens == 0) return;
  embed_kernel<<<b.tokens, 256, 0, stream>>>(embedding, is_f16, b, hidden, x);
  check_launch("embed");
}

// Tokens beyond 8 go in further passes of 8 (prefill asks for few logits; decode for at most a batch).
void head_f16(const uint16_t* w, int64_t rows, int64_t k, const float* h, int tokens, float* y, int64_t y_stride,
              cudaStream_t stream) {
  for (int t0 = 0; t0 < tokens; t0 += kHeadMaxTokens) {
    const int nt = std::min(kHeadMaxTokens, tokens - t0);
    const float* hp = h + t0 * k;
    float* yp = y + t0 * y_stride;
    switch (nt) {
      case 1: launch_f16<1>(w, rows, k, hp, yp, y_stride, stream); break;
      case 2: launch_f16<2>(w, rows, k, hp, yp, y_stride, stream); break;
      case 3: launch_f16<3>(w, rows, k, hp, yp, y_stride, stream); break;
      case 4: launch_f16<4>(w, rows, k, hp, yp, y_stride, stream); break;
      case 5: launch_f16<5>(w, rows, k, hp, yp, y_stride, stream); break;
      case 6: launch_f16<6>(w, rows, k, hp, yp, y_stride, stream); break;
      case 7: launch_f16<7>(w, rows, k, hp, yp, y_stride, stream); break;
      default: launch_f16<8>(w, rows, k, hp, yp, y_stride, stream); break;
    }
    check_launch("head_f16");
  }
}

void head_int8(const uint8_t* w, const float* row_scale, int64_t rows, const DevActs& x, int tokens, float* y,
               int64_t y_stride, cudaStream_t stream) {
  BITNET_CHECK(x.k_pad % 16 == 0, "[cuda] head_int8: row padding {} is not a multiple of 16", x.k_pad);
  for (int t0 = 0; t0 < tokens; t0 += kHeadMaxTokens) {
    const int nt = std::min(kHeadMaxTokens, tokens - t0);
    DevActs part = x;
    part.q = x.q + t0 * x.k_pad;
    part.dequant = x.dequant + t0;
    part.sums = x.sums + t0;
    float* yp = y + t0 * y_stride;
    switch (nt) {
      case 1: launch_i8<1>(w, row_scale, rows, part, yp, y_stride, stream); break;
      case 2: launch_i8<2>(w, row_scale, rows, part, yp, y_stride, stream); break;
      case 3: launch_i8<3>(w, row_scale, rows, part, yp, y_stride, stream); break;
      case 4: launch_i8<4>(w, row_scale, rows, part, yp, y_stride, stream); break;
      case 5: launch_i8<5>(w, row_scale, rows, part, yp, y_stride, stream); break;
      case 6: launch_i8<6>(w, row_scale, rows, part, yp, y_stride, stream); break;
      case 7: launch_i8<7>(w, row_scale, rows, part, yp, y_stride, stream); break;
      default: launch_i8<8>(w, row_scale, rows, part, yp, y_stride, stream); break;
    }
    check_launch("head_int8");
  }
}

}  // namespace bitnet::cuda
