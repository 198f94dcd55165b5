#pragma once
// Device memory owned by an object (freed on destruction), with explicit host <-> device copies. An allocation
// that does not fit says how much was asked, how much is free, and on which device.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "cuda/check.h"

namespace bitnet::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes, const char* what = "buffer") { allocate(bytes, what); }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }

  void allocate(size_t bytes, const char* what = "buffer") {
    reset();
    if (bytes == 0) return;
    const cudaError_t e = cudaMalloc(&ptr_, bytes);
    if (e != cudaSuccess) {
      ptr_ = nullptr;
      (void)cudaGetLastError();  // clear the sticky-free error state of a failed allocation
      size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      int dev = 0;
      (void)cudaGetDevice(&dev);
      fail("[cuda] cannot allocate {:.1f} MiB for the {} on GPU {} ({:.1f} MiB free of {:.1f} MiB): {}",
           bytes / 1048576.0, what, dev, free_b / 1048576.0, total_b / 1048576.0, cudaGetErrorString(e));
    }
    bytes_ = bytes;
  }
  void reset() {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

  // Synchronous copies of whole spans (load-time uploads and test read-backs).
  template <class T>
  void upload(std::span<const T> host, size_t offset_bytes = 0) {
    BITNET_CHECK(offset_bytes + host.size_bytes() <= bytes_, "[cuda] upload of {} bytes past a {}-byte buffer",
                 host.size_bytes(), bytes_);
    BITNET_CUDA_CHECK(cudaMemcpy(static_cast<char*>(ptr_) + offset_bytes, host.data(), host.size_bytes(),
                                 cudaMemcpyHostToDevice));
  }
  template <class T>
  void download(std::span<T> host, size_t offset_bytes = 0) const {
    BITNET_CHECK(offset_bytes + host.size_bytes() <= bytes_, "[cuda] download of {} bytes past a {}-byte buffer",
                 host.size_bytes(), bytes_);
    BITNET_CUDA_CHECK(cudaMemcpy(host.data(), static_cast<const char*>(ptr_) + offset_bytes, host.size_bytes(),
                                 cudaMemcpyDeviceToHost));
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace bitnet::cuda
