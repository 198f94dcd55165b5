// libFuzzer: `bitnet train -c CONFIG` configs (strict JSON, nesting and types, ranges, unknown keys): parsing either
// succeeds or throws bitnet::Error.
#include <bitnet/error.h>
#include <bitnet/train_run.h>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto c = bitnet::train::parse_run_config(text, "/nonexistent-fuzz-dir");
    volatile int64_t sink = c.model.layers + c.batch_size;
    (void)sink;
  } catch (const bitnet::Error&) {
  }
  return 0;
}
