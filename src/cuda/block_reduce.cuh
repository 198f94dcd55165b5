#pragma once
// Block-wide reductions (sum, max) through warp shuffles and one shared slot per warp. Every thread of the block
// must call them (they synchronize) and every thread gets the result.
namespace bitnet::cuda {

template <class T, class Op>
__device__ __forceinline__ T block_reduce(T v, Op op) {
  __shared__ T slots[32];
  __syncthreads();  // the slots may still be read by a previous reduction
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int warps = static_cast<int>((blockDim.x + 31) / 32);
  if (lane == 0) slots[warp] = v;
  __syncthreads();
  v = slots[0];
  for (int i = 1; i < warps; ++i) v = op(v, slots[i]);  // the same order in every thread: one result
  return v;
}

struct SumOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

}  // namespace bitnet::cuda
