// `bitnet run`: text generation with llama.cpp's flags (-m -p -n -t -c --temp --top-k --top-p --min-p
// --repeat-penalty --seed), tokens streamed as they come; `-cnv` for an interactive chat in which -p is the
// system prompt.
#include <bitnet/chat_template.h>
#include <bitnet/cuda.h>
#include <bitnet/engine.h>
#include <bitnet/generate.h>
#include <bitnet/gguf.h>
#include <bitnet/model.h>
#include <bitnet/open_model.h>
#include <bitnet/sampler.h>
#include <bitnet/thread_pool.h>
#include <bitnet/tokenizer.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "commands.h"

namespace bitnet::cli {

namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  int n_predict = 128;
  int threads = 0;
  int ctx = 2048;
  int batch = 512;
  bool conversation = false;
  bool display_prompt = true;
  bool quantize = false;
  std::string head = "f16";
  SamplingParams sampling;
  int gpu_layers = -1;  // unset: all layers when --device cuda, else none
  std::string device = "cpu";
};

int run(const RunOptions& o) {
  if (o.threads > 0) set_default_thread_count(o.threads);
  const OpenedModel opened = open_model(o.model, LoadOptions{parse_head_type(o.head), o.quantize});
  print_load_notes(opened.notes);
  const Model& model = *opened.model;
  const Tokenizer* tok = opened.tokenizer.get();
  Engine engine(model, o.ctx, 1, o.batch);
  // -ngl N alone means the GPU (as llama.cpp); --device cuda alone means every layer there.
  const bool gpu = o.device == "cuda" || o.gpu_layers > 0;
  if (gpu) cuda::offload(engine, o.gpu_layers);

  auto print = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  GenerateOptions g;
  g.max_tokens = o.n_predict;
  g.sampling = o.sampling;
  if (!o.conversation) {
    if (o.display_prompt) print(o.prompt);
    const GenerateResult r = generate(engine, *tok, o.prompt, g, print);
    std::fprintf(stderr, "\n\nprompt: %d tokens in %.2f s (%.2f t/s); generated: %zu tokens in %.2f s (%.2f t/s), %s\n",
                 r.prompt_tokens, r.prompt_seconds, r.prompt_tokens / r.prompt_seconds, r.tokens.size(),
                 r.generate_seconds, r.tokens.empty() ? 0.0 : r.tokens.size() / r.generate_seconds,
                 r.finish_reason.c_str());
    return 0;
  }

  // Chat: each turn renders the whole conversation with the model's template and generates the reply; the part
  // of it already in the KV cache (earlier turns) is not evaluated again.
  std::vector<ChatMessage> messages;
  if (!o.prompt.empty()) messages.push_back({"system", o.prompt});
  const std::string bos = tok->bos_id() >= 0 ? tok->token_to_piece(tok->bos_id()) : "";
  const std::string eos = tok->eos_id() >= 0 ? tok->token_to_piece(tok->eos_id()) : "";
  std::optional<ChatTemplate> tmpl;
  if (!tok->chat_template().empty()) tmpl.emplace(tok->chat_template());
  g.add_bos = false;  // the template writes BOS itself when the model wants it
  std::string line;
  std::vector<int32_t> cached;  // the tokens in the engine's cache
  std::fprintf(stderr, "chat with %s; an empty line or end of input quits\n", model.description.c_str());
  while (true) {
    std::fputs("\n> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line.empty()) break;
    messages.push_back({"user", line});
    const std::string text = tmpl ? tmpl->render(messages, {bos, eos, true}) : render_bitnet_chat(messages, bos, true);
    // The cache keeps the earlier turns: only the new part of the rendered conversation is evaluated.
    g.cached = &cached;
    const GenerateResult r = generate(engine, *tok, text, g, print);
    messages.push_back({"assistant", r.text});
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt, or chat (-cnv)");
  auto o = std::make_shared<RunOptions>();
  cmd->add_option("-m,--model", o->model, "GGUF model file or Hugging Face checkpoint directory")->required();
  cmd->add_flag("--quantize", o->quantize, kQuantizeHelp);
  cmd->add_option("-p,--prompt", o->prompt, "Prompt (in chat mode: the system prompt)");
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate (-1: until end of text or context)")
      ->check(CLI::Range(-1, 1 << 30));
  cmd->add_option("-t,--threads", o->threads, "Threads")->check(CLI::Range(1, 1024));
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-b,--batch-size", o->batch, "Prompt tokens per forward pass")->check(CLI::Range(1, 4096));
  // The sampling values are checked by SamplingParams::validate (the same words as the server and Python).
  cmd->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy); -temp also works");
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k (0: off)");
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1: off)");
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p (0: off)");
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1: off)");
  cmd->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Tokens the penalty looks back");
  cmd->add_option("-s,--seed", o->sampling.seed, "Random seed");
  cmd->add_flag("--conversation", o->conversation, "Interactive chat (also -cnv); -p is the system prompt");
  cmd->add_flag("!--no-display-prompt", o->display_prompt, "Do not echo the prompt");
  cmd->add_option("--head", o->head, kHeadTypeHelp)->check(CLI::IsMember(head_type_names()));
  cmd->add_option("--n-gpu-layers", o->gpu_layers, "Layers on the GPU (also -ngl): 0 or all of them (a split is not supported yet)");
  cmd->add_option("--device", o->device, "Where to run: cpu or cuda (GPU 0)")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->callback([&selected, o] { selected = [o] { return run(*o); }; });
}

}  // namespace bitnet::cli
