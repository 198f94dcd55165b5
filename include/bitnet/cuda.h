#pragma once
// The CUDA backend (optional build, BITNET_CUDA): device discovery and moving an Engine's forward pass onto an
// NVIDIA GPU. Without the backend compiled in, every function still exists: built() is false, device_count()
// is 0 and offload() throws an Error saying to rebuild with BITNET_CUDA=ON.
#include <bitnet/engine.h>

#include <cstddef>
#include <string>

namespace bitnet::cuda {

// True when this binary contains the CUDA backend.
bool built();

struct DeviceInfo {
  int index = 0;
  std::string name;
  int sm_major = 0, sm_minor = 0;
  int multiprocessors = 0;
  size_t total_memory = 0, free_memory = 0;
  size_t l2_bytes = 0;
};

// Usable devices; 0 (never a crash or an exception) when the backend is not built, the driver (libcuda) is
// missing or too old, or no GPU is visible. `why`, when given, receives the reason for 0.
int device_count(std::string* why = nullptr);
// Throws bitnet::Error (with the reason) when `device` cannot be used.
DeviceInfo device_info(int device = 0);

// Runs `engine`'s forward pass on GPU `device` from now on: uploads the model (ternary weights repacked into the
// GPU layout), allocates the KV cache and scratch on the device, and attaches itself as the engine's backend.
// gpu_layers: < 0 or >= the model's layers puts every layer on the GPU; 0 leaves the engine on the CPU.
// Splitting layers between CPU and GPU is not implemented and is an error. Throws bitnet::Error with a message
// naming the need (no backend, no device, not enough device memory, unsupported shape).
void offload(Engine& engine, int gpu_layers = -1, int device = 0);

}  // namespace bitnet::cuda
