// RoPE + KV-cache store, and causal GQA attention over the f16 cache (decode and prefill alike: token t of
// sequence s attends to cache positions 0..pos[t] of s, which rope_kv has written before).
//
// Attention is one block per (head, token): scores in shared memory (8 lanes per key, so a warp reads 4 keys
// per step as 128-byte runs), a block-wide softmax, then P.V with threads over (key parity, dimension) so that
// value rows are read coalesced. Not yet split over blocks along the context (flash-decoding): at batch 1 only
// `heads` blocks run, which is the first thing to measure and change when long contexts matter.
#include <bitnet/error.h>
#include <cuda_fp16.h>

#include <cmath>

#include "cuda/block_reduce.cuh"
#include "cuda/check.h"
#include "cuda/kernels.h"

namespace bitnet::cuda {

namespace {

constexpr int kAttnThreads = 256;
constexpr int kMaxHeadDim = 256;

__global__ void rope_kv_kernel(float* qkv, int64_t qkv_stride, DevBatch b, int heads, int kv_heads, int d,
                               const float* __restrict__ rope_cos, const float* __restrict__ rope_sin, DevKvCache c,
                               int64_t layer) {
  const int t = static_cast<int>(blockIdx.x);
  const int pos = b.pos[t], seq = b.seq[t];
  const int half = d / 2;
  float* q = qkv + t * qkv_stride;
  float* k = q + static_cast<int64_t>(heads) * d;
  const float* v = k + c.kv_dim;
  const float* cs = rope_cos + static_cast<int64_t>(pos) * half;
  const float* sn = rope_sin + static_cast<int64_t>(pos) * half;
  const int64_t slot = ((layer * c.n_seq + seq) * c.n_ctx + pos) * c.kv_dim;
  // Pairs (i, i + d/2) of every q head, then of every k head (stored to the cache as f16, round to nearest even).
  for (int p = static_cast<int>(threadIdx.x); p < (heads + kv_heads) * half; p += blockDim.x) {
    const int h = p / half, i = p % half;
    const bool is_k = h >= heads;
    float* x = is_k ? k + (h - heads) * d : q + h * d;
    const float a = x[i], bb = x[i + half];
    const float r0 = __fsub_rn(__fmul_rn(a, cs[i]), __fmul_rn(bb, sn[i]));  // the CPU's a*cos - b*sin
    const float r1 = __fadd_rn(__fmul_rn(bb, cs[i]), __fmul_rn(a, sn[i]));
    x[i] = r0;
    x[i + half] = r1;
    if (is_k) {
      uint16_t* dst = c.k + slot + (h - heads) * d;
      dst[i] = __half_as_ushort(__float2half_rn(r0));
      dst[i + half] = __half_as_ushort(__float2half_rn(r1));
    }
  }
  for (int64_t i = threadIdx.x; i < c.kv_dim; i += blockDim.x) c.v[slot + i] = __half_as_ushort(__float2half_rn(v[i]));
}

__global__ void __launch_bounds__(kAttnThreads) attention_kernel(const float* __restrict__ qkv, int64_t qkv_stride,
                                                                 DevBatch b, int heads, int kv_heads, int d,
                                                                 DevKvCache c, int64_t layer, float* __restrict__ o,
                                                                 int64_t o_stride, float scale) {
  extern __shared__ float scores[];  // n_ctx floats
  __shared__ float partial[kAttnThreads];
  const int h = static_cast<int>(blockIdx.x), t = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x);
  const int n = b.pos[t] + 1;
  const int kvh = h / (heads / kv_heads);
  const int64_t base = (layer * c.n_seq + b.seq[t]) * c.n_ctx * c.kv_dim + static_cast<int64_t>(kvh) * d;
  const float* q = qkv + t * qkv_stride + static_cast<int64_t>(h) * d;

  // Scores: group of 8 lanes per key; lane `sub` holds dims 8 sub + 64 p .. + 7 for p < d / 64.
  const int sub = tid % 8, group = tid / 8, groups = kAttnThreads / 8;
  const int chunks = d / 64;
  float qr[kMaxHeadDim / 8];
#pragma unroll
  for (int p = 0; p < kMaxHeadDim / 64; ++p)
#pragma unroll
    for (int e = 0; e < 8; ++e) qr[8 * p + e] = p < chunks ? q[64 * p + 8 * sub + e] : 0.0f;
  for (int j0 = 0; j0 < n; j0 += groups) {  // every lane runs the same trip count: the shuffles see full groups
    const int j = j0 + group;
    float s = 0.0f;
    if (j < n) {
      const uint4* kr = reinterpret_cast<const uint4*>(c.k + base + static_cast<int64_t>(j) * c.kv_dim);
#pragma unroll
      for (int p = 0; p < kMaxHeadDim / 64; ++p) {
        if (p < chunks) {
          const uint4 raw = __ldg(kr + 8 * p + sub);
          const __half2* hv = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const float2 f = __half22float2(hv[e]);
            s += f.x * qr[8 * p + 2 * e] + f.y * qr[8 * p + 2 * e + 1];
          }
        }
      }
    }
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    s += __shfl_xor_sync(0xffffffffu, s, 2);
    s += __shfl_xor_sync(0xffffffffu, s, 4);
    if (sub == 0 && j < n) scores[j] = s * scale;
  }
  __syncthreads();
  float m = -INFINITY;
  for (int j = tid; j < n; j += kAttnThreads) m = fmaxf(m, scores[j]);
  m = block_reduce(m, MaxOp{});
  float total = 0.0f;
  for (int j = tid; j < n; j += kAttnThreads) {
    const float e = expf(scores[j] - m);
    scores[j] = e;
    total += e;
  }
  total = block_reduce(total, SumOp{});  // its barriers also publish the scores written above
  const float inv = 1.0f / total;

  // P.V: thread (lane of key class jc, dimension i); classes split the keys j = jc, jc + classes, ...
  const int classes = kAttnThreads / d;  // d <= 256, a multiple of 64: 1, 2 or 4
  const int i = tid % d, jc = tid / d;
  float acc0 = 0.0f, acc1 = 0.0f;
  if (jc < classes) {
    const __half* vb = reinterpret_cast<const __half*>(c.v + base) + i;
    int j = jc;
    for (; j + classes < n; j += 2 * classes) {
      acc0 += scores[j] * __half2float(vb[static_cast<int64_t>(j) * c.kv_dim]);
      acc1 += scores[j + classes] * __half2float(vb[static_cast<int64_t>(j + classes) * c.kv_dim]);
    }
    if (j < n) acc0 += scores[j] * __half2float(vb[static_cast<int64_t>(j) * c.kv_dim]);
  }
  partial[tid] = acc0 + acc1;
  __syncthreads();
  if (tid < d) {
    float sum = 0.0f;
    for (int k = 0; k < classes; ++k) sum += partial[k * d + tid];
    o[t * o_stride + static_cast<int64_t>(h) * d + tid] = sum * inv;
  }
}

}  // namespace

void rope_kv(float* qkv, int64_t qkv_stride, const DevBatch& b, int heads, int kv_heads, int head_dim,
             const float* rope_cos, const float* rope_sin, const DevKvCache& cache, int64_t layer,
             cudaStream_t stream) {
  if (b.tokens == 0) return;
  rope_kv_kernel<<<b.tokens, 128, 0, stream>>>(qkv, qkv_stride, b, heads, kv_heads, head_dim, rope_cos, rope_sin,
                                               cache, layer);
  check_launch("rope_kv");
}

void attention_prepare(int64_t n_ctx, int head_dim) {
  BITNET_CHECK(head_dim % 64 == 0 && head_dim <= kMaxHeadDim,
               "[cuda] attention needs a head dimension that is a multiple of 64 and at most {}, got {}", kMaxHeadDim,
               head_dim);
  const int64_t bytes = n_ctx * static_cast<int64_t>(sizeof(float));
  int dev = 0, limit = 0;
  BITNET_CUDA_CHECK(cudaGetDevice(&dev));
  BITNET_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  const int64_t static_bytes = (kAttnThreads + 32) * static_cast<int64_t>(sizeof(float)) + 64;
  BITNET_CHECK(bytes + static_bytes <= limit,
               "[cuda] a context of {} needs {} KiB of shared memory per attention block; this GPU gives {} KiB "
               "(use a smaller -c)", n_ctx, (bytes + static_bytes) / 1024, limit / 1024);
  BITNET_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(bytes)));
}

void attention(const float* qkv, int64_t qkv_stride, const DevBatch& b, int heads, int kv_heads, int head_dim,
               const DevKvCache& cache, int64_t layer, float* o, int64_t o_stride, cudaStream_t stream) {
  if (b.tokens == 0) return;
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(b.tokens));
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const size_t smem = static_cast<size_t>(cache.n_ctx) * sizeof(float);
  attention_kernel<<<grid, kAttnThreads, smem, stream>>>(qkv, qkv_stride, b, heads, kv_heads, head_dim, cache, layer,
                                                         o, o_stride, scale);
  check_launch("attention");
}

}  // namespace bitnet::cuda
