// libFuzzer: training checkpoints (safetensors with __metadata__ counters): reading the header, its metadata and
// the tensor table either succeeds or throws bitnet::Error naming the file.
#include <bitnet/error.h>
#include <bitnet/train.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader takes a path: one file per process, rewritten for each input.
  static const std::string path = "/tmp/bitnet-fuzz-checkpoint-" + std::to_string(getpid()) + ".safetensors";
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    int64_t step = 0;
    const auto tensors = bitnet::train::load_checkpoint_weights(path, &step);
    volatile size_t sink = tensors.size() + static_cast<size_t>(step);
    (void)sink;
  } catch (const bitnet::Error&) {
  }
  return 0;
}
