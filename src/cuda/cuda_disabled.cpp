// The CUDA API of a build without the backend (BITNET_CUDA=OFF): nothing to find, and a clear way out.
#include <bitnet/cuda.h>
#include <bitnet/error.h>

namespace bitnet::cuda {

bool built() { return false; }

int device_count(std::string* why) {
  if (why != nullptr) *why = "this build has no CUDA backend (rebuild with -DBITNET_CUDA=ON and nvcc on PATH)";
  return 0;
}

DeviceInfo device_info(int) { fail("[cuda] this build has no CUDA backend: rebuild with -DBITNET_CUDA=ON"); }

void offload(Engine&, int gpu_layers, int) {
  if (gpu_layers == 0) return;
  fail("[cuda] this build has no CUDA backend: rebuild with -DBITNET_CUDA=ON (needs nvcc) to use -ngl / --device cuda");
}

}  // namespace bitnet::cuda
