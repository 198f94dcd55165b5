// libFuzzer: any byte string given to the GGUF reader either parses or throws bitnet::Error; ASan/UBSan watch
// every read. A parsed file's tensor spans and metadata are touched so a bad bound would show.
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/ternary_formats.h>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = bitnet::GgufFile::from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.gguf");
    size_t sum = 0;
    for (const auto& [k, v] : f.metadata()) sum += v.to_string(4).size() + k.size();
    for (const auto& t : f.tensors()) {
      const auto d = f.tensor_data(t);
      if (!d.empty()) sum += static_cast<size_t>(d.front()) + static_cast<size_t>(d.back());
      // The ternary decoders must cope with whatever bytes a parsed file holds.
      if ((t.type == bitnet::GgmlType::tq2_0 || t.type == bitnet::GgmlType::i2_s) && t.nbytes < (1u << 16)) {
        const auto fmt = t.type == bitnet::GgmlType::tq2_0 ? bitnet::TernaryFormat::tq2_0 : bitnet::TernaryFormat::i2_s;
        try {
          const int64_t cols = t.dims[0];
          sum += bitnet::inspect_ternary(fmt, {reinterpret_cast<const uint8_t*>(d.data()), d.size()},
                                         t.numel() / cols, cols).zeros;
        } catch (const bitnet::Error&) {
        }
      }
    }
    volatile size_t sink = sum;
    (void)sink;
  } catch (const bitnet::Error&) {
  }
  return 0;
}
