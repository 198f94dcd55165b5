#pragma once
// Turning CUDA runtime errors into bitnet::Error with the call that failed and the runtime's own words.
#include <bitnet/error.h>
#include <cuda_runtime.h>

#define BITNET_CUDA_CHECK(call)                                                                       \
  do {                                                                                                \
    const cudaError_t bitnet_cuda_err_ = (call);                                                      \
    if (bitnet_cuda_err_ != cudaSuccess)                                                              \
      ::bitnet::fail("[cuda] {} failed: {} ({})", #call, cudaGetErrorString(bitnet_cuda_err_),        \
                     cudaGetErrorName(bitnet_cuda_err_));                                             \
  } while (0)
