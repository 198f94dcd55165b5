// Ternary x int8 GEMM for prefill: a 64-row x 64-token block tile; per 128-wide k step the block loads the
// 2-bit weight panel (2 KiB) and the int8 activation panel (8 KiB), unpacks the weights to int8 codes in shared
// memory (the unpack is paid once per 64 tokens), and four warps each run a 32 x 32 tile of int8 tensor-core
// mma.sync m16n8k32 (s8 x s8 -> s32; codes are 0..2, the offset is removed with the activation sum). Global
// loads of step k+1 are in flight (in registers) while step k multiplies; shared memory is double-buffered,
// so one __syncthreads per step suffices.
#include <bitnet/error.h>

#include "cuda/gpu_layout_math.h"
#include "cuda/kernels.h"
#include "cuda/ternary_epilogue.cuh"

namespace bitnet::cuda {

namespace {

constexpr int kBM = 64;          // weight rows per block
constexpr int kBN = 64;          // tokens per block
constexpr int kBK = 128;         // k per step (two 64-weight chunks)
constexpr int kLds = kBK + 16;   // shared row stride in bytes: 144 = 36 words, so the 8 rows x 4 words of a
                                 // fragment load hit 32 distinct banks (36 g + t mod 32 is a permutation)
constexpr int kThreads = 128;

__device__ __forceinline__ void mma_s8(int32_t (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

struct Staged {   // one thread's share of a k step, held in registers between load and store
  uint4 w;        // one 16-byte chunk: row (tid / 2) of the tile, chunk (tid % 2) of the step
  uint4 x[4];     // 4 x 16 bytes of activations
};

__device__ __forceinline__ void load_step(const DevTernary& w, const DevActs& x, int tokens, int64_t row0, int64_t tok0,
                                          int64_t kc, Staged& st) {
  const int tid = static_cast<int>(threadIdx.x);
  const int64_t n_chunks = w.k_pad / kChunkWeights;
  {
    const int64_t n = row0 + tid / 2;
    const int64_t c = kc + tid % 2;
    // Rows past the matrix: zero codes (their outputs are never stored).
    st.w = n < w.rows ? __ldg(reinterpret_cast<const uint4*>(w.w + gpu_chunk_offset(n, c, n_chunks))) : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int idx = tid + i * kThreads;  // 512 pieces of 16 bytes: token idx / 8, bytes 16 * (idx % 8)
    const int64_t t = tok0 + idx / 8;
    st.x[i] = t < tokens ? __ldg(reinterpret_cast<const uint4*>(x.q + t * x.k_pad + kc * kChunkWeights) + idx % 8)
                         : make_uint4(0, 0, 0, 0);
  }
}

__device__ __forceinline__ void store_step(const Staged& st, uint8_t* sa, uint8_t* sb) {
  const int tid = static_cast<int>(threadIdx.x);
  {
    // Chunk word m shifted by 2s = the codes of chunk elements 16 s + 4 m .. + 3 (gpu_layout.h).
    uint8_t* row = sa + (tid / 2) * kLds + (tid % 2) * kChunkWeights;
    const uint32_t wr[4] = {st.w.x, st.w.y, st.w.z, st.w.w};
#pragma unroll
    for (int s = 0; s < 4; ++s)
#pragma unroll
      for (int m = 0; m < 4; ++m)
        *reinterpret_cast<uint32_t*>(row + 16 * s + 4 * m) = (wr[m] >> (2 * s)) & 0x03030303u;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    *reinterpret_cast<uint4*>(sb + (idx / 8) * kLds + 16 * (idx % 8)) = st.x[i];
  }
}

__global__ void __launch_bounds__(kThreads) gemm_kernel(DevTernary w, DevActs x, int tokens, float* __restrict__ y,
                                                         int64_t y_stride, bool accumulate) {
  __shared__ __align__(16) uint8_t smem_a[2][kBM * kLds];
  __shared__ __align__(16) uint8_t smem_b[2][kBN * kLds];
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int64_t tok0 = static_cast<int64_t>(blockIdx.y) * kBN;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;  // this warp's 32 x 32 tile inside the block tile
  const int g = lane / 4, tg = lane % 4;                  // mma fragment coordinates
  int32_t acc[2][4][4] = {};                              // [m16 tile][n8 tile][fragment]
  const int64_t steps = w.k_pad / kBK;

  Staged st;
  load_step(w, x, tokens, row0, tok0, 0, st);
  store_step(st, smem_a[0], smem_b[0]);
  __syncthreads();
  for (int64_t step = 0; step < steps; ++step) {
    const int buf = static_cast<int>(step & 1);
    if (step + 1 < steps) load_step(w, x, tokens, row0, tok0, (step + 1) * (kBK / kChunkWeights), st);
    const uint8_t* sa = smem_a[buf];
    const uint8_t* sb = smem_b[buf];
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 32) {
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        // A (16 x 32, row-major): a0 row g, k 4tg..; a1 row g+8; a2 row g, k 16+4tg..; a3 row g+8, k 16+4tg..
        const uint8_t* base = sa + (wm + 16 * i + g) * kLds + kk + 4 * tg;
        a[i][0] = *reinterpret_cast<const uint32_t*>(base);
        a[i][1] = *reinterpret_cast<const uint32_t*>(base + 8 * kLds);
        a[i][2] = *reinterpret_cast<const uint32_t*>(base + 16);
        a[i][3] = *reinterpret_cast<const uint32_t*>(base + 8 * kLds + 16);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        // B (32 x 8, column-major = one token's k run): b0 token g, k 4tg..; b1 token g, k 16+4tg..
        const uint8_t* base = sb + (wn + 8 * j + g) * kLds + kk + 4 * tg;
        b[j][0] = *reinterpret_cast<const uint32_t*>(base);
        b[j][1] = *reinterpret_cast<const uint32_t*>(base + 16);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_s8(acc[i][j], a[i], b[j]);
    }
    if (step + 1 < steps) store_step(st, smem_a[buf ^ 1], smem_b[buf ^ 1]);
    __syncthreads();
  }
  // C (16 x 8): c0, c1 row g, tokens 2tg, 2tg+1; c2, c3 row g+8.
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int f = 0; f < 4; ++f) {
        const int64_t n = row0 + wm + 16 * i + g + (f >= 2 ? 8 : 0);
        const int64_t t = tok0 + wn + 8 * j + 2 * tg + (f & 1);
        if (n < w.rows && t < tokens) store_ternary_output(w, x, static_cast<int>(t), n, acc[i][j][f], y, y_stride, accumulate);
      }
}

}  // namespace

void ternary_gemm(const DevTernary& w, const DevActs& x, int tokens, float* y, int64_t y_stride, bool accumulate,
                  cudaStream_t stream) {
  BITNET_CHECK(x.k_pad == w.k_pad && w.k_pad % kBK == 0, "[cuda] ternary_gemm: activations padded to {}, weights to {}",
               x.k_pad, w.k_pad);
  BITNET_CHECK(tokens > 0, "[cuda] ternary_gemm of no tokens");
  const dim3 grid(static_cast<unsigned>((w.rows + kBM - 1) / kBM), static_cast<unsigned>((tokens + kBN - 1) / kBN));
  gemm_kernel<<<grid, kThreads, 0, stream>>>(w, x, tokens, y, y_stride, accumulate);
  check_launch("ternary_gemm");
}

}  // namespace bitnet::cuda
