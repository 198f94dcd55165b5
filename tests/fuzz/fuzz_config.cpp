// libFuzzer: config.json / generation_config.json parsing (JSON depth, duplicate keys, types, ranges) either
// succeeds or throws bitnet::Error.
#include <bitnet/error.h>
#include <bitnet/model_config.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto c = bitnet::parse_model_config(text, "fuzz/config.json");
    volatile int64_t sink = c.head_dim + c.num_key_value_heads;
    (void)sink;
  } catch (const bitnet::Error&) {
  }
  try {
    const auto g = bitnet::parse_generation_config(text, "fuzz/generation_config.json");
    volatile size_t sink = g.eos_token_ids.size();
    (void)sink;
  } catch (const bitnet::Error&) {
  }
  return 0;
}
