#pragma once
// One function per `bitnet` subcommand (one cmd_*.cpp file each): it registers the subcommand and its flags
// on the app, and makes `selected` the action to run when the user picks it.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace bitnet::cli {

using Action = std::function<int()>;

// What loading a model decided (open_model.h notes), on stderr.
inline void print_load_notes(const std::vector<std::string>& notes) {
  for (const auto& n : notes) std::fprintf(stderr, "note: %s\n", n.c_str());
}
inline constexpr const char* kQuantizeHelp =
    "Ternarize a full-precision Hugging Face checkpoint (no quantization_config) with absmean and run it with "
    "BitNet b1.58 arithmetic; without it such a checkpoint is refused";

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

}  // namespace bitnet::cli
