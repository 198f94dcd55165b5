#pragma once
// GPU test helpers: skip (visibly, with the reason) when no device is present; upload/download vectors.
#include <bitnet/cuda.h>
#include <gtest/gtest.h>

#include <vector>

#include "cuda/device_buffer.h"

#define BITNET_REQUIRE_GPU()                                                \
  do {                                                                      \
    std::string why_;                                                       \
    if (::bitnet::cuda::device_count(&why_) == 0) GTEST_SKIP() << why_;     \
  } while (0)

namespace bitnet::cuda::test {

template <class T>
DeviceBuffer to_device(const std::vector<T>& v) {
  DeviceBuffer b(std::max<size_t>(v.size() * sizeof(T), 1), "test data");
  if (!v.empty()) b.upload(std::span<const T>(v.data(), v.size()));
  return b;
}

template <class T>
std::vector<T> to_host(const DeviceBuffer& b, size_t n) {
  BITNET_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<T> v(n);
  b.download(std::span<T>(v.data(), n));
  return v;
}

}  // namespace bitnet::cuda::test
