// `bitnet batched-bench`: llama.cpp's llama-batched-bench. For each prompt length PP, generation length TG and
// number of parallel sequences B: B prompts of PP random tokens are evaluated (one shared prompt copied to every
// sequence with -pps), then TG steps each decode one token of every sequence in one batch; the table gives the
// times and speeds of both phases, as llama-batched-bench prints them (-o jsonl / json for machines).
#include <bitnet/engine.h>
#include <bitnet/error.h>
#include <bitnet/model.h>
#include <bitnet/thread_pool.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "commands.h"

namespace bitnet::cli {

namespace {

struct BatchedOptions {
  std::string model, random;
  HfSource hf;
  std::vector<int> npp = {128, 256, 512}, ntg = {128, 256}, npl = {1, 2, 4, 8, 16, 32};
  bool pp_shared = false, tg_separate = false, quantize = false;
  int batch = 2048, ubatch = 0, threads = 0;
  bool batch_given = false;
  std::string output = "md", head = "f16", packing = "auto";
};

struct Row {
  int pp, tg, pl, n_kv;
  double t_pp, t_tg;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Submits `tokens` to the engine in chunks of at most `max_batch` (each sequence's tokens stay in position order).
void decode_all(Engine& engine, const std::vector<BatchToken>& tokens, int64_t max_batch, std::vector<float>& logits) {
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(max_batch)) {
    const size_t n = std::min(tokens.size() - i, static_cast<size_t>(max_batch));
    engine.decode(std::span<const BatchToken>(tokens.data() + i, n), logits.data());
  }
}

int run_batched_bench(const BatchedOptions& o) {
  if (o.threads > 0) set_default_thread_count(o.threads);
  BITNET_CHECK(o.random.empty() || (o.model.empty() && o.hf.repo.empty()),
               "[batched-bench] --random {} and a model (-m/-hf) both given; give one", o.random);
  const std::string path = o.random.empty() ? model_from_flags(o.model, o.hf, "batched-bench") : "";
  std::vector<std::string> notes;
  const HeadType head = parse_head_type(o.head);
  const Model model = [&] {
    if (!path.empty())
      return Model::load(path, load_options_with_progress(head, o.quantize, o.packing, std::make_shared<Progress>("load", "layers")), &notes);
    Progress bar("random 2b4t", "layers");
    return Model::random(TransformerConfig::bitnet_2b4t(), 1, head, [&](int64_t d, int64_t t) { bar.update(d, t); },
                         parse_packing_choice(o.packing).value_or(TernaryPacking::two_bit));
  }();
  print_load_notes(notes);
  for (const auto* list : {&o.npp, &o.ntg, &o.npl})
    BITNET_CHECK(!list->empty(), "[batched-bench] -npp, -ntg and -npl each need at least one value");
  const int max_pl = *std::max_element(o.npl.begin(), o.npl.end());
  int max_len = 0;
  for (int pp : o.npp)
    for (int tg : o.ntg) max_len = std::max(max_len, pp + tg);
  const int64_t max_batch = effective_batch(o.batch, o.batch_given, o.ubatch);
  // One cache slot per parallel sequence, each as long as the longest PP + TG.
  Engine engine(model, std::max(max_len, 1), max_pl, max_batch);
  const int64_t vocab = model.config().vocab;
  // Logits rows: a decode() writes one per token marked for logits, and at most one token per sequence is (a
  // prompt's last, each step's): max_pl rows. Sized by the batch instead, this took 1 GB at -b 2048.
  std::vector<float> logits(static_cast<size_t>(max_pl) * static_cast<size_t>(vocab));
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
  const int threads = default_pool().size();

  if (o.output == "md") {
    fmt::print("\nbatched-bench: {}, n_batch = {}, is_pp_shared = {}, is_tg_separate = {}, n_threads = {}\n\n",
               model.description + packing_suffix(model), max_batch, o.pp_shared ? 1 : 0, o.tg_separate ? 1 : 0, threads);
    fmt::print("|{:>6} | {:>6} | {:>4} | {:>6} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |\n", "PP", "TG", "B", "N_KV",
               "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s", "T s", "S t/s");
    fmt::print("|{:->7}|{:->8}|{:->6}|{:->8}|{:->10}|{:->10}|{:->10}|{:->10}|{:->10}|{:->10}|\n", "", "", "", "", "", "", "", "", "", "");
  }
  nlohmann::json all = nlohmann::json::array();
  bool warmed = false;
  for (int pp : o.npp)
    for (int tg : o.ntg)
      for (int pl : o.npl) {
        // The prompts (one shared, or one per sequence), each sequence from position 0.
        std::vector<BatchToken> prompt;
        for (int j = 0; j < (o.pp_shared ? 1 : pl); ++j)
          for (int i = 0; i < pp; ++i) prompt.push_back({tok(rng), i, j, i == pp - 1});
        if (!warmed && !prompt.empty()) {  // the first pass pays for page faults and cold caches, untimed
          decode_all(engine, prompt, max_batch, logits);
          warmed = true;
        }
        auto t0 = std::chrono::steady_clock::now();
        if (!prompt.empty()) decode_all(engine, prompt, max_batch, logits);
        const double t_pp = seconds_since(t0);
        // A shared prompt's cache is copied to the other sequences, untimed (llama-batched-bench's seq_cp).
        if (o.pp_shared && pl > 1 && pp > 0) {
          const std::vector<uint8_t> cache = engine.save_sequence(0, pp);
          for (int j = 1; j < pl; ++j) engine.load_sequence(j, cache);
        }
        t0 = std::chrono::steady_clock::now();
        std::vector<BatchToken> step;
        if (o.tg_separate) {  // sequence after sequence: 0 0 0 ... 1 1 1 ...
          for (int j = 0; j < pl; ++j)
            for (int i = 0; i < tg; ++i) {
              step = {{tok(rng), pp + i, j, true}};
              engine.decode(step, logits.data());
            }
        } else {  // all sequences together: 0123 0123 ...
          for (int i = 0; i < tg; ++i) {
            step.clear();
            for (int j = 0; j < pl; ++j) step.push_back({tok(rng), pp + i, j, true});
            engine.decode(step, logits.data());
          }
        }
        const double t_tg = seconds_since(t0);
        const int n_kv = o.pp_shared ? pl * pp + pl * tg : pl * (pp + tg);
        const double pp_tokens = o.pp_shared ? pp : static_cast<double>(pl) * pp;
        const double speed_pp = t_pp > 0 ? pp_tokens / t_pp : 0.0;
        const double speed_tg = t_tg > 0 ? static_cast<double>(pl) * tg / t_tg : 0.0;
        const double t = t_pp + t_tg;
        const double speed = t > 0 ? (pp_tokens + static_cast<double>(pl) * tg) / t : 0.0;
        const nlohmann::json j = {{"n_batch", max_batch}, {"is_pp_shared", o.pp_shared ? 1 : 0},
                                  {"n_threads", threads}, {"pp", pp}, {"tg", tg}, {"pl", pl}, {"n_kv", n_kv},
                                  {"t_pp", t_pp}, {"speed_pp", speed_pp}, {"t_tg", t_tg}, {"speed_tg", speed_tg},
                                  {"t", t}, {"speed", speed}, {"model", model.description + packing_suffix(model)}};
        if (o.output == "jsonl") {
          fmt::print("{}\n", j.dump());
          std::fflush(stdout);
        } else if (o.output == "json") {
          all.push_back(j);
        } else {
          fmt::print("|{:>6} | {:>6} | {:>4} | {:>6} | {:>8.3f} | {:>8.2f} | {:>8.3f} | {:>8.2f} | {:>8.3f} | {:>8.2f} |\n", pp,
                     tg, pl, n_kv, t_pp, speed_pp, t_tg, speed_tg, t, speed);
          std::fflush(stdout);
        }
      }
  if (o.output == "json") fmt::print("{}\n", all.dump(2));
  return 0;
}

}  // namespace

void add_batched_bench_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("batched-bench",
                                 "Throughput of many sequences decoded together, like llama-batched-bench (-npp -ntg -npl)");
  auto o = std::make_shared<BatchedOptions>();
  cmd->add_option("-m,--model", o->model, "GGUF model file or Hugging Face checkpoint directory (or -hf ORG/NAME)");
  cmd->add_option("--random", o->random, "A random-weight model of this shape instead (2b4t)")->check(CLI::IsMember({"2b4t"}));
  cmd->add_flag("--quantize", o->quantize, kQuantizeHelp);
  add_hf_flags(cmd, o->hf);
  cmd->add_option("--npp", o->npp, "Prompt lengths (also -npp)")->delimiter(',')->check(CLI::Range(0, 1 << 20))->capture_default_str();
  llama_alias(cmd, "-npp", "--npp");
  cmd->add_option("--ntg", o->ntg, "Generated tokens per sequence (also -ntg)")->delimiter(',')->check(CLI::Range(0, 1 << 20))->capture_default_str();
  llama_alias(cmd, "-ntg", "--ntg");
  cmd->add_option("--npl", o->npl, "Parallel sequences (also -npl)")->delimiter(',')->check(CLI::Range(1, 4096))->capture_default_str();
  llama_alias(cmd, "-npl", "--npl");
  cmd->add_flag("--pps", o->pp_shared, "The prompt is shared: evaluated once and copied to every sequence (also -pps)");
  llama_alias(cmd, "-pps", "--pps");
  cmd->add_flag("--tgs", o->tg_separate, "Decode the sequences one after another instead of together (also -tgs)");
  llama_alias(cmd, "-tgs", "--tgs");
  cmd->add_option("-t,--threads", o->threads, "Threads")->check(CLI::Range(1, 1024));
  auto* b = cmd->add_option("-b,--batch-size", o->batch, "Tokens per forward pass")->check(CLI::Range(1, 1 << 16))->capture_default_str();
  cmd->add_option("--ubatch-size", o->ubatch, "llama.cpp's physical batch (also -ub): a forward pass is min(-b, -ub) tokens (0: -b)")
      ->check(CLI::Range(0, 1 << 16));
  llama_alias(cmd, "-ub", "--ubatch-size");
  cmd->add_option("-o,--output-format", o->output, "md (llama-batched-bench's table), jsonl (its --output-format jsonl) or json")
      ->check(CLI::IsMember({"md", "jsonl", "json"}))->capture_default_str();
  cmd->add_option("--head", o->head, kHeadTypeHelp)->check(CLI::IsMember(head_type_names()));
  add_packing_option(cmd, o->packing);
  cmd->callback([&selected, o, b] {
    o->batch_given = b->count() > 0;
    selected = [o] { return run_batched_bench(*o); };
  });
}

}  // namespace bitnet::cli
