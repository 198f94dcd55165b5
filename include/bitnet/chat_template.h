#pragma once
// Chat prompts from a model's Jinja chat template (tokenizer.chat_template in GGUF, chat_template in
// tokenizer_config.json), rendered as Hugging Face transformers renders it with Python jinja2: sandboxed
// environment with trim_blocks, lstrip_blocks and loop controls, plus raise_exception().
//
// The interpreter covers the Jinja subset chat templates use: {{ }}, {% if/elif/else %}, {% for %} (loop.*,
// tuple targets, inline `if`, else, break/continue), {% set %} (also namespace attributes and {% set %}..{% endset %}),
// whitespace control (-, +), comments; expressions with literals, lists, dicts, attribute/item access, slices,
// + - * / // % ** ~, comparisons, and/or/not, in, `x if c else y`, `is` tests, filters (trim, capitalize, upper,
// lower, title, length, default, join, first, last, list, string, int, float, abs, replace, tojson, items,
// reverse, sort, selectattr/rejectattr, map(attribute=)) and string/dict methods (strip, split, startswith,
// replace, items, get ...). Anything else is a bitnet::Error naming the template line, never a wrong prompt.
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace bitnet {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool"
  std::string content;
  // Tool use (OpenAI's message fields), empty when absent. tool_calls_json: the assistant's calls, a JSON array
  // of {"id", "type": "function", "function": {"name", "arguments"}}; templates see each call's arguments as an
  // object (transformers' convention) when the string holds JSON. tool_call_id / name: a "tool" message's answer.
  std::string tool_calls_json{};
  std::string tool_call_id{};
  std::string name{};
  bool content_is_null = false;  // an assistant turn with calls and no text: templates see content None
};

struct ChatTemplateOptions {
  std::string bos_token;
  std::string eos_token;
  bool add_generation_prompt = true;
  std::string tools_json{};  // OpenAI's "tools" array (JSON text) for templates that render tools; empty: None
};

class ChatTemplate {
 public:
  // Parses the template; throws bitnet::Error with the line of the first construct it does not support.
  explicit ChatTemplate(std::string source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Renders `messages`; raise_exception() in the template and type errors become bitnet::Error.
  std::string render(std::span<const ChatMessage> messages, const ChatTemplateOptions& options) const;
  const std::string& source() const { return source_; }
  // Whether the template renders tool definitions (it reads the `tools` variable).
  bool renders_tools() const;

 private:
  struct Program;
  std::string source_;
  std::unique_ptr<Program> program_;
};

// BitNet b1.58 2B4T's prompt format (formats.md §3.2) for model files that carry no template:
// BOS once, then "Role: content<|eot_id|>" per message (role capitalized, content trimmed), then "Assistant: ".
std::string render_bitnet_chat(std::span<const ChatMessage> messages, const std::string& bos_token,
                               bool add_generation_prompt);

}  // namespace bitnet
