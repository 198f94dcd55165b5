// The chat format of BitNet b1.58 2B4T (formats.md §3.2), for model files without a chat template. It is
// rendered through the interpreter from the template's own text, so that `| trim` (Python str.strip(), Unicode
// spaces included) and capitalize behave exactly as in a file that carries the template.
#include <bitnet/chat_template.h>

namespace bitnet {

namespace {
// tokenizer_config.json's template in Llama-3's shape (BOS in front of the first message); the rendered shape
// is checked in tests against the model card's example prompt.
constexpr const char* kBitnetTemplate =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | "
    "capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = "
    "bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}"
    "{% endif %}";
}  // namespace

std::string render_bitnet_chat(std::span<const ChatMessage> messages, const std::string& bos_token,
                               bool add_generation_prompt) {
  static const ChatTemplate kTemplate(kBitnetTemplate);
  return kTemplate.render(messages, {bos_token, "", add_generation_prompt});
}

}  // namespace bitnet
