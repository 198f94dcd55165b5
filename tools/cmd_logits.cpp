// `bitnet logits -m MODEL -p TEXT -o OUT.npy`: the logits of every position of a prompt (float32 [tokens, vocab]),
// for checking the engine against another implementation (transformers, llama.cpp) position by position. The
// token ids go beside them (OUT.tokens.npy, int32) unless --tokens gave them.
#include <bitnet/engine.h>
#include <bitnet/files.h>
#include <bitnet/npy.h>
#include <bitnet/open_model.h>
#include <bitnet/thread_pool.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>

#include "commands.h"

namespace bitnet::cli {

namespace {
std::vector<int32_t> parse_ids(const std::string& list, int64_t vocab) {
  std::vector<int32_t> ids;
  size_t at = 0;
  while (at < list.size()) {
    size_t end = list.find_first_of(", ", at);
    if (end == std::string::npos) end = list.size();
    if (end > at) {
      int64_t v = -1;
      const auto [p, ec] = std::from_chars(list.data() + at, list.data() + end, v);
      BITNET_CHECK(ec == std::errc() && p == list.data() + end && v >= 0 && v < vocab,
                   "[logits] --tokens: '{}' is not a token id in [0, {})", list.substr(at, end - at), vocab);
      ids.push_back(static_cast<int32_t>(v));
    }
    at = end + 1;
  }
  return ids;
}
}  // namespace

void add_logits_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("logits", "Write the logits of every position of a prompt to a .npy file");
  struct Opts {
    std::string model, prompt, file, tokens, output, head = "f16", packing = "auto";
    bool no_bos = false, quantize = false;
    int threads = 0, batch = 512;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-m,--model", o->model, "GGUF model file or Hugging Face checkpoint directory")->required();
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "Text to evaluate");
  auto* f = cmd->add_option("-f,--file", o->file, "Read the text from this file");
  auto* t = cmd->add_option("--tokens", o->tokens, "Token ids to evaluate, e.g. \"1,17,250\" (instead of text)");
  p->excludes(f)->excludes(t);
  f->excludes(t);
  cmd->add_option("-o,--output", o->output, "Output .npy file: float32 [tokens, vocab]")->required();
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token the model asks for (text input)");
  cmd->add_flag("--quantize", o->quantize, kQuantizeHelp);
  cmd->add_option("--head", o->head, kHeadTypeHelp)->check(CLI::IsMember(head_type_names()));
  add_packing_option(cmd, o->packing);
  cmd->add_option("-t,--threads", o->threads, "Threads")->check(CLI::Range(1, 1024));
  cmd->add_option("-b,--batch-size", o->batch, "Tokens per forward pass")->check(CLI::Range(1, 4096));
  cmd->callback([&selected, o, p, f, t] {
    if (p->count() + f->count() + t->count() == 0) throw CLI::RequiredError("-p TEXT, -f FILE or --tokens IDS");
    selected = [o] {
      if (o->threads > 0) set_default_thread_count(o->threads);
      if (!o->file.empty()) o->prompt = read_regular_file(o->file, 256ull << 20);
      const OpenedModel opened = open_model(
          o->model, load_options_with_progress(parse_head_type(o->head), o->quantize, o->packing, std::make_shared<Progress>("load", "layers")));
      print_load_notes(opened.notes);
      const int64_t vocab = opened.model->config().vocab;
      const bool from_text = o->tokens.empty();
      const std::vector<int32_t> ids =
          from_text ? opened.tokenizer->encode(o->prompt, opened.tokenizer->add_bos_default() && !o->no_bos, true)
                    : parse_ids(o->tokens, vocab);
      BITNET_CHECK(!ids.empty(), "[logits] nothing to evaluate: the input has no tokens");
      const auto n = static_cast<int64_t>(ids.size());
      Engine engine(*opened.model, n, 1, std::min<int64_t>(o->batch, n));
      std::vector<float> logits(static_cast<size_t>(n * vocab));
      engine.eval_all(0, ids, 0, logits.data());
      write_npy_f32(o->output, {n, vocab}, logits);
      if (from_text) {
        std::string tokens_path = o->output;
        if (tokens_path.ends_with(".npy")) tokens_path.resize(tokens_path.size() - 4);
        tokens_path += ".tokens.npy";
        write_npy_i32(tokens_path, {n}, ids);
        fmt::print(stderr, "tokens: {}\n", tokens_path);
      }
      fmt::print(stderr, "wrote {}: float32 [{}, {}] ({} tokens: {})\n", o->output, n, vocab, n,
                 fmt::join(ids.begin(), ids.begin() + std::min<int64_t>(n, 16), ","));
      return 0;
    };
  });
}

}  // namespace bitnet::cli
