// libFuzzer: chat templates from model files (tokenizer.chat_template, tokenizer_config.json): parsing and
// rendering either succeed or throw bitnet::Error; nesting, loops and filters never crash or exhaust the stack.
#include <bitnet/chat_template.h>
#include <bitnet/error.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    const bitnet::ChatTemplate t(source);
    const std::vector<bitnet::ChatMessage> messages = {{"system", "be brief"}, {"user", "hi {{ x }}"},
                                                      {"assistant", "hello"}, {"user", "bye"}};
    const std::string out = t.render(messages, {"<s>", "</s>", true});
    volatile size_t sink = out.size();
    (void)sink;
  } catch (const bitnet::Error&) {
  }
  return 0;
}
