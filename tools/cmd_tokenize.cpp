// `bitnet tokenize -m FILE.gguf|tokenizer.json -p TEXT|-f FILE`: the ids and pieces a model's tokenizer gives, like
// llama.cpp's llama-tokenize. --chat wraps the text as one user message in the model's chat template first.
#include <bitnet/chat_template.h>
#include <bitnet/tokenizer.h>
#include <bitnet/error.h>
#include <fmt/format.h>

#include <fstream>
#include <iterator>

#include "commands.h"

namespace bitnet::cli {

namespace {
// A piece as printable text: control characters escaped, invalid UTF-8 (a character cut across tokens) as \xNN.
std::string printable(const std::string& piece) {
  std::string out;
  const std::string clean = utf8_sanitize(piece);
  if (clean != piece) {
    for (unsigned char c : piece) out += c < 0x80 && c >= 0x20 ? std::string(1, char(c)) : fmt::format("\\x{:02x}", c);
    return out;
  }
  for (char c : piece) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    else out += c;
  }
  return out;
}
}  // namespace

void add_tokenize_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text (GGUF or tokenizer.json)");
  struct Opts {
    std::string model, prompt, file;
    bool ids_only = false, no_bos = false, no_special = false, chat = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-m,--model", o->model, "GGUF model/vocabulary file, or a tokenizer.json (or its directory)")->required();
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "Text to tokenize");
  auto* f = cmd->add_option("-f,--file", o->file, "Read the text from this file (bytes as they are)");
  p->excludes(f);
  f->excludes(p);
  cmd->add_flag("--ids-only,--ids", o->ids_only, "Print only the ids, as a list");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token the model asks for");
  cmd->add_flag("--no-parse-special", o->no_special, "Treat control-token text such as <|eot_id|> as plain text");
  cmd->add_flag("--chat", o->chat, "Render the prompt as a user message with the model's chat template first");
  cmd->callback([&selected, o, p, f] {
    if (p->count() == 0 && f->count() == 0) throw CLI::RequiredError("-p TEXT or -f FILE");
    selected = [o]() {
      const auto tok = Tokenizer::load(o->model);
      if (!o->file.empty()) {
        std::ifstream in(o->file, std::ios::binary);
        if (!in) throw Error(fmt::format("tokenize: cannot read '{}'", o->file));
        o->prompt.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
      std::string text = o->prompt;
      bool add_bos = tok->add_bos_default() && !o->no_bos;
      if (o->chat) {
        const std::vector<ChatMessage> msgs = {{"user", o->prompt}};
        const std::string bos = tok->bos_id() >= 0 ? tok->token_text(tok->bos_id()) : "";
        const std::string eos = tok->eos_id() >= 0 ? tok->token_text(tok->eos_id()) : "";
        text = tok->chat_template().empty() ? render_bitnet_chat(msgs, bos, true)
                                            : ChatTemplate(tok->chat_template()).render(msgs, {bos, eos, true});
        // The template writes BOS itself when it wants one.
        if (!bos.empty() && text.rfind(bos, 0) == 0) add_bos = false;
      }
      const auto ids = tok->encode(text, add_bos, !o->no_special);
      if (o->ids_only) {
        fmt::print("[{}]\n", fmt::join(ids, ", "));
        return 0;
      }
      for (int32_t id : ids) fmt::print("{:>7} -> '{}'\n", id, printable(tok->token_to_piece(id)));
      fmt::print("{} tokens ({})\n", ids.size(), tok->describe());
      return 0;
    };
  });
}

}  // namespace bitnet::cli
