#pragma once
// One function per `bitnet` subcommand (one cmd_*.cpp file each): it registers the subcommand and its flags
// on the app, and makes `selected` the action to run when the user picks it.
#include <CLI/CLI.hpp>
#include <bitnet/engine.h>
#include <bitnet/model.h>

#include <cstdio>
#include <functional>
#include <memory>

#include "hub_cli.h"
#include "progress.h"
#include <string>
#include <vector>

namespace bitnet::cli {

using Action = std::function<int()>;

// Load options with a progress line (progress.h) for the layers of a GGUF model.
// `packing`: the --packing choice (auto, 2bit or base3).
inline LoadOptions load_options_with_progress(HeadType head, bool quantize, const std::string& packing,
                                              const std::shared_ptr<Progress>& bar) {
  LoadOptions o{head, quantize, {}, parse_packing_choice(packing)};
  o.progress = [bar](int64_t done, int64_t total) { bar->update(done, total); };
  return o;
}
// " (base3)" for a model whose ternary weights are in the base-3 packing, else "": benchmark tables name it.
inline std::string packing_suffix(const Model& model) {
  return model.ternary_packing() == TernaryPacking::base3 ? " (base3)" : "";
}
// --packing (kPackingHelp) into `packing`.
inline CLI::Option* add_packing_option(CLI::App* cmd, std::string& packing) {
  return cmd->add_option("--packing", packing, kPackingHelp)
      ->check(CLI::IsMember(packing_choice_names()))
      ->capture_default_str();
}

// What loading a model decided (open_model.h notes), on stderr.
inline void print_load_notes(const std::vector<std::string>& notes) {
  for (const auto& n : notes) std::fprintf(stderr, "note: %s\n", n.c_str());
}
inline constexpr const char* kQuantizeHelp =
    "Ternarize a full-precision Hugging Face checkpoint (no quantization_config) with absmean and run it with "
    "BitNet b1.58 arithmetic; without it such a checkpoint is refused";

// llama.cpp's spellings (llama_flags.cpp). CLI11 reads a single-dash long flag such as "-sys" as "-s ys", so each
// subcommand declares llama.cpp's single-dash forms beside the option they spell (llama_alias), and main() replaces
// an argument that exactly equals one of the selected subcommand's aliases by the long name before CLI11 parses it
// (llama.cpp takes no "-ctk=f16": exact tokens only).
void llama_alias(CLI::App* cmd, const std::string& alias, const std::string& long_name);
const std::string* find_llama_alias(const std::string& command, const std::string& arg);
const std::vector<std::pair<std::string, std::string>>& llama_aliases(const std::string& command);
// Checks and rewrites argv (args[1] is the subcommand): aliases become long names; an unknown command or flag, or a
// llama.cpp flag this command does not take, is the returned message, a whole line (with a "did you mean"); "" when all is well.
std::string prepare_args(CLI::App& app, std::vector<std::string>& args);
// The candidate closest to `word` by edit distance when it is close enough to be a slip, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// A llama.cpp flag for a choice bitnet makes one way: the values in `accepted` (what bitnet does) pass, any other
// is an error naming the flag, the value and `reason`. comma_list: llama-bench's "a,b" lists, each checked.
CLI::Option* add_choice_flag(CLI::App* cmd, const std::string& names, const std::string& alias,
                             std::vector<std::string> accepted, const std::string& reason, bool comma_list = false);
// A llama.cpp flag for something bitnet does not have: parsed (with its value when takes_value), then refused.
CLI::Option* add_refused_flag(CLI::App* cmd, const std::string& names, const std::string& alias,
                              const std::string& reason, bool takes_value);
// -sm -ts -mg -ctk -ctv -fa -nkvo (-kvo) -tb: one GPU, the KV cache types, one attention kernel, one thread count.
// bench: llama-bench's forms (values, comma lists: -nkvo 0|1).
// -ctk/-ctv (f16 or q8_0) are stored in *kv.
void add_gpu_placement_flags(CLI::App* cmd, KvCacheTypes* kv, bool bench = false);
// --device (also -dev): cpu or cuda, with llama.cpp's names none and CUDA0; anything else an error naming it.
CLI::Option* add_device_option(CLI::App* cmd, std::string& device);
// The forward-pass size from -b and llama.cpp's -ub (n_ubatch = min(n_batch, n_ubatch); -ub alone sets it).
int effective_batch(int batch, bool batch_given, int ubatch);
// -s/--seed: -1 (and llama.cpp's LLAMA_DEFAULT_SEED 0xFFFFFFFF) draws a random seed from std::random_device.
uint64_t resolve_seed(int64_t seed);

void add_info_command(CLI::App& app, Action& selected);
void add_inspect_command(CLI::App& app, Action& selected);
void add_convert_command(CLI::App& app, Action& selected);
void add_bench_command(CLI::App& app, Action& selected);
void add_train_command(CLI::App& app, Action& selected);
void add_tokenize_command(CLI::App& app, Action& selected);
void add_run_command(CLI::App& app, Action& selected);
void add_perplexity_command(CLI::App& app, Action& selected);
void add_make_model_command(CLI::App& app, Action& selected);
void add_tokenizer_train_command(CLI::App& app, Action& selected);
void add_export_command(CLI::App& app, Action& selected);
void add_analyze_command(CLI::App& app, Action& selected);
void add_serve_command(CLI::App& app, Action& selected);
void add_logits_command(CLI::App& app, Action& selected);
void add_pull_command(CLI::App& app, Action& selected);
void add_models_command(CLI::App& app, Action& selected);
void add_report_command(CLI::App& app, Action& selected);
void add_batched_bench_command(CLI::App& app, Action& selected);

}  // namespace bitnet::cli
