// The public CUDA API (include/bitnet/cuda.h) of a build with the backend. The runtime is linked statically:
// it loads the driver (libcuda.so.1) itself at the first call, so a machine without a driver gets an error code
// from cudaGetDeviceCount (reported here as 0 devices with the reason), never a loader failure at start-up.
#include <bitnet/cuda.h>
#include <bitnet/error.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include "cuda/check.h"
#include "cuda/cuda_backend.h"

namespace bitnet::cuda {

bool built() { return true; }

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (why != nullptr) {
      *why = fmt::format("no usable CUDA device: {} ({})", cudaGetErrorString(e), cudaGetErrorName(e));
      if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice)
        *why += "; is an NVIDIA GPU present and its driver (libcuda.so.1) installed and new enough?";
    }
    return 0;
  }
  if (n == 0 && why != nullptr) *why = "no CUDA device is visible (check CUDA_VISIBLE_DEVICES)";
  return n;
}

DeviceInfo device_info(int device) {
  std::string why;
  const int n = device_count(&why);
  BITNET_CHECK(n > 0, "[cuda] {}", why);
  BITNET_CHECK(device >= 0 && device < n, "[cuda] GPU {} does not exist ({} visible)", device, n);
  cudaDeviceProp p{};
  BITNET_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  DeviceInfo info;
  info.index = device;
  info.name = p.name;
  info.sm_major = p.major;
  info.sm_minor = p.minor;
  info.multiprocessors = p.multiProcessorCount;
  info.l2_bytes = static_cast<size_t>(p.l2CacheSize);
  BITNET_CUDA_CHECK(cudaSetDevice(device));
  BITNET_CUDA_CHECK(cudaMemGetInfo(&info.free_memory, &info.total_memory));
  return info;
}

void offload(Engine& engine, int gpu_layers, int device) {
  if (gpu_layers == 0) return;
  const int64_t layers = engine.model().config().layers;
  BITNET_CHECK(gpu_layers < 0 || gpu_layers >= layers,
               "[cuda] -ngl {} would split the model's {} layers between CPU and GPU, which is not implemented yet; "
               "use -ngl 0 (CPU) or -ngl {} or more (all on the GPU)", gpu_layers, layers, layers);
  const KvCacheTypes kv = engine.kv_cache_types();
  BITNET_CHECK(kv.k == KvCacheType::f16 && kv.v == KvCacheType::f16,
               "[cuda] the CUDA backend keeps an f16 KV cache; -ctk {} -ctv {} runs on the CPU only (use -ngl 0 or "
               "f16)", kv_cache_type_name(kv.k), kv_cache_type_name(kv.v));
  (void)device_info(device);  // a clear error when there is no driver, no device or no such device
  engine.set_backend(std::make_unique<CudaBackend>(engine.model(), engine.context(), engine.sequences(),
                                                   engine.max_batch(), device));
}

}  // namespace bitnet::cuda
