// libFuzzer: the ONNX reader (protobuf with its limits, then every initializer's dims, type and bytes) and the
// GGUF metadata our export keeps in metadata_props parse or throw bitnet::Error, never read out of bounds.
#include <bitnet/error.h>
#include <bitnet/gguf.h>

#include <cstddef>
#include <cstdint>

#include "onnx/base64.h"
#include "onnx/onnx_file.h"
#include "onnx/onnx_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = bitnet::onnx_io::OnnxFile::from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.onnx");
    size_t sum = f.nodes().size();
    for (const auto& t : f.initializers())
      if (!t.data.empty()) sum += static_cast<size_t>(t.data.front()) + static_cast<size_t>(t.data.back());
    if (const auto it = f.metadata().find(std::string(bitnet::onnx_io::kGgufKey)); it != f.metadata().end())
      if (const auto blob = bitnet::onnx_io::base64_decode(it->second))
        sum += bitnet::GgufFile::from_bytes(*blob, "fuzz.onnx (bitnet.gguf)").metadata().size();
    volatile size_t sink = sum;
    (void)sink;
  } catch (const bitnet::Error&) {
  }
  return 0;
}
