// `bitnet perplexity -m MODEL -f FILE [-c CTX]`: llama.cpp-style perplexity of a text file.
#include <bitnet/gguf.h>
#include <bitnet/perplexity.h>
#include <bitnet/thread_pool.h>
#include <bitnet/tokenizer.h>
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "commands.h"

namespace bitnet::cli {

void add_perplexity_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text file (chunks of -c tokens)");
  struct Options {
    std::string model, file, head = "f16";
    int ctx = 512, threads = 0, batch = 512;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("-f,--file", o->file, "Text file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-c,--ctx-size", o->ctx, "Chunk length in tokens")->check(CLI::Range(4, 1 << 20));
  cmd->add_option("-t,--threads", o->threads, "Threads")->check(CLI::Range(1, 1024));
  cmd->add_option("-b,--batch-size", o->batch, "Tokens per forward pass")->check(CLI::Range(1, 4096));
  cmd->add_option("--head", o->head, std::string(kHeadTypeHelp) + " (to measure its cost)")
      ->check(CLI::IsMember(head_type_names()));
  cmd->callback([&selected, o] {
    selected = [o] {
      if (o->threads > 0) set_default_thread_count(o->threads);
      std::ifstream in(o->file, std::ios::binary);
      BITNET_CHECK(in.good(), "[perplexity] cannot open the text file '{}'", o->file);
      std::stringstream text;
      text << in.rdbuf();
      const Model model = Model::load(o->model, parse_head_type(o->head));
      const auto tok = Tokenizer::load(o->model);
      const std::vector<int32_t> ids = tok->encode(text.str(), tok->add_bos_default(), false);
      Engine engine(model, o->ctx, 1, std::min(o->batch, o->ctx));
      fmt::print(stderr, "{} tokens, {} chunks of {}\n", ids.size(), ids.size() / static_cast<size_t>(o->ctx), o->ctx);
      const PerplexityResult r = perplexity(engine, ids, o->ctx, [](int64_t c, int64_t n, double ppl) {
        fmt::print(stderr, "[{}/{}] {:.4f}\n", c, n, ppl);
      });
      fmt::print("perplexity: {:.4f} (mean NLL {:.4f} nats over {} tokens, {} chunks)\n", r.perplexity, r.mean_nll,
                 r.scored_tokens, r.chunks);
      return 0;
    };
  });
}

}  // namespace bitnet::cli
