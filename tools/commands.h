#pragma once
// One function per `bitnet` subcommand (one cmd_*.cpp file each): it registers the subcommand and its flags
// on the app, and makes `selected` the action to run when the user picks it.
#include <CLI/CLI.hpp>

#include <functional>

namespace bitnet::cli {

using Action = std::function<int()>;

void add_info_command(CLI::App& app, Action& selected);
void add_inspect_command(CLI::App& app, Action& selected);
void add_convert_command(CLI::App& app, Action& selected);
void add_bench_command(CLI::App& app, Action& selected);
void add_train_command(CLI::App& app, Action& selected);
void add_tokenize_command(CLI::App& app, Action& selected);
void add_run_command(CLI::App& app, Action& selected);
void add_perplexity_command(CLI::App& app, Action& selected);
void add_make_model_command(CLI::App& app, Action& selected);
void add_serve_command(CLI::App& app, Action& selected);

}  // namespace bitnet::cli
