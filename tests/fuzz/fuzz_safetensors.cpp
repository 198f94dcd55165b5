// libFuzzer: the safetensors reader parses or throws bitnet::Error, never reads out of bounds.
#include <bitnet/error.h>
#include <bitnet/safetensors.h>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = bitnet::SafetensorsFile::from_bytes({reinterpret_cast<const std::byte*>(data), size},
                                                       "fuzz.safetensors");
    size_t sum = 0;
    for (const auto& t : f.tensors()) {
      const auto d = f.data(t);
      if (!d.empty()) sum += static_cast<size_t>(d.front()) + static_cast<size_t>(d.back());
    }
    volatile size_t sink = sum;
    (void)sink;
  } catch (const bitnet::Error&) {
  }
  return 0;
}
