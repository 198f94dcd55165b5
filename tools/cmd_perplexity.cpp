// `bitnet perplexity -m MODEL -f FILE [-c CTX]`: perplexity of a text file exactly as llama-perplexity computes and
// prints it ([i] running estimates, "Final estimate: PPL = x +/- y"), so the figures compare with llama.cpp's.
#include <bitnet/cuda.h>
#include <bitnet/files.h>
#include <bitnet/gguf.h>
#include <bitnet/open_model.h>
#include <bitnet/perplexity.h>
#include <bitnet/thread_pool.h>
#include <bitnet/tokenizer.h>
#include <fmt/format.h>

#include <cstdio>

#include "commands.h"
#include "progress.h"

#include <unistd.h>

#include <optional>

namespace bitnet::cli {

void add_perplexity_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text file (chunks of -c tokens)");
  struct Options {
    std::string model, file, head = "f16", packing = "auto";
    int ctx = 512, threads = 0, batch = 512, ubatch = 0, gpu_layers = -1;
    KvCacheTypes kv_cache;  // -ctk / -ctv
    bool batch_given = false;
    std::string device = "cpu";
    bool quantize = false;
    int64_t chunks = -1;
    HfSource hf;  // -hf: the model from the Hugging Face Hub instead of -m
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("-m,--model", o->model, "GGUF model file or Hugging Face checkpoint directory (or -hf ORG/NAME)");
  cmd->add_flag("--quantize", o->quantize, kQuantizeHelp);
  cmd->add_option("-f,--file", o->file, "Text file")->required();
  cmd->add_option("-c,--ctx-size", o->ctx, "Chunk length in tokens")->check(CLI::Range(4, 1 << 20));
  cmd->add_option("-t,--threads", o->threads, "Threads")->check(CLI::Range(1, 1024));
  auto* b = cmd->add_option("-b,--batch-size", o->batch, "Tokens per forward pass")->check(CLI::Range(1, 4096));
  cmd->add_option("--ubatch-size", o->ubatch, "llama.cpp's physical batch (also -ub): a forward pass is min(-b, -ub) tokens (0: -b)")
      ->check(CLI::Range(0, 4096));
  llama_alias(cmd, "-ub", "--ubatch-size");
  cmd->add_option("--n-gpu-layers,--gpu-layers", o->gpu_layers, "Layers on the GPU (also -ngl): 0 or all of them (-1: all with --device cuda)");
  llama_alias(cmd, "-ngl", "--n-gpu-layers");
  add_device_option(cmd, o->device);
  add_gpu_placement_flags(cmd, &o->kv_cache);
  add_hf_flags(cmd, o->hf);
  cmd->add_option("--head", o->head, std::string(kHeadTypeHelp) + " (to measure its cost)")
      ->check(CLI::IsMember(head_type_names()));
  add_packing_option(cmd, o->packing);
  cmd->add_option("--chunks", o->chunks, "Evaluate at most this many chunks (-1: all)")->check(CLI::Range(-1, 1 << 30));
  cmd->callback([&selected, o, b] {
    o->batch_given = b->count() > 0;
    selected = [o] {
      if (o->threads > 0) set_default_thread_count(o->threads);
      // A regular file, read whole but bounded (a FIFO or /dev/zero is refused, not read forever).
      const std::string text = read_regular_file(o->file, uint64_t{1} << 31);
      o->model = model_from_flags(o->model, o->hf, "perplexity");
      const OpenedModel opened = open_model(
          o->model, load_options_with_progress(parse_head_type(o->head), o->quantize, o->packing, std::make_shared<Progress>("load", "layers")));
      print_load_notes(opened.notes);
      const Model& model = *opened.model;
      const Tokenizer* tok = opened.tokenizer.get();
      // As llama-perplexity: BOS first when the vocabulary adds one, and at the start of every chunk.
      const bool add_bos = tok->add_bos_default() && tok->bos_id() >= 0;
      const std::vector<int32_t> ids = tok->encode(text, add_bos, false);
      const int batch = std::min(effective_batch(o->batch, o->batch_given, o->ubatch), o->ctx);
      Engine engine(model, o->ctx, 1, batch, nullptr, o->kv_cache);
      if (o->device == "cuda" || o->gpu_layers > 0) cuda::offload(engine, o->gpu_layers);
      const int64_t chunks = static_cast<int64_t>(ids.size()) / o->ctx;
      fmt::print(stderr, "perplexity: {} tokens; calculating perplexity over {} chunks, n_ctx={}, batch_size={}\n",
                 ids.size(), o->chunks >= 0 ? std::min<int64_t>(chunks, o->chunks) : chunks, o->ctx, batch);
      // llama-perplexity's running list goes to stdout as each chunk ends; on a terminal, where it would break
      // the progress line, the line shows the running value and the list comes at the end.
      const bool one_line = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
      std::string list;
      std::optional<Progress> bar;
      bar.emplace("perplexity", "chunks");
      const PerplexityResult r = perplexity(engine, ids, {o->ctx, add_bos ? tok->bos_id() : -1, o->chunks},
                                            [&](int64_t c, int64_t total, double ppl) {
                                              const std::string item = fmt::format("[{}]{:.4f},", c, ppl);
                                              bar->update(c, total, fmt::format("PPL {:.4f}", ppl));
                                              if (one_line) {
                                                list += item;
                                                return;
                                              }
                                              fmt::print("{}", item);
                                              std::fflush(stdout);
                                            });
      bar.reset();  // ends the progress line before the list
      if (one_line) fmt::print("{}", list);
      fmt::print("\nFinal estimate: PPL = {:.4f} +/- {:.5f}\n", r.perplexity, r.perplexity_error);
      std::fflush(stdout);
      fmt::print(stderr, "mean NLL {:.6f} nats over {} scored tokens in {} chunks\n", r.mean_nll, r.scored_tokens,
                 r.chunks);
      return 0;
    };
  });
}

}  // namespace bitnet::cli
