// The `bitnet` command line: one subcommand per file (cmd_*.cpp).
#include <bitnet/error.h>
#include <bitnet/version.h>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"bitnet: ternary (1.58-bit) neural networks on CPUs and GPUs", "bitnet"};
  app.set_version_flag("--version", std::string("bitnet ") + bitnet::kVersion);
  app.require_subcommand(1);
  bitnet::cli::Action selected;
  bitnet::cli::add_info_command(app, selected);
  bitnet::cli::add_inspect_command(app, selected);
  bitnet::cli::add_convert_command(app, selected);
  bitnet::cli::add_bench_command(app, selected);
  bitnet::cli::add_train_command(app, selected);
  bitnet::cli::add_tokenize_command(app, selected);
  bitnet::cli::add_run_command(app, selected);
  bitnet::cli::add_perplexity_command(app, selected);
  bitnet::cli::add_make_model_command(app, selected);
  bitnet::cli::add_tokenizer_train_command(app, selected);
  bitnet::cli::add_export_command(app, selected);
  bitnet::cli::add_analyze_command(app, selected);
  bitnet::cli::add_serve_command(app, selected);
  bitnet::cli::add_logits_command(app, selected);
  // llama.cpp's single-dash long flags (-temp, -cnv, -ngl), which CLI11 cannot name, become their long forms.
  std::vector<std::string> args(argv, argv + argc);
  for (auto& a : args) {
    if (a == "-temp") a = "--temp";
    if (a == "-cnv") a = "--conversation";
    if (a == "-ngl") a = "--n-gpu-layers";
    if (a == "-np") a = "--parallel";
  }
  // CLI11 answers an unknown command with "A subcommand is required": name it, and list the real ones.
  if (args.size() > 1 && !args[1].empty() && args[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      names += (names.empty() ? "" : ", ") + sub->get_name();
      known = known || sub->get_name() == args[1];
    }
    if (!known) {
      std::fprintf(stderr, "bitnet: unknown command '%s' (commands: %s; bitnet --help)\n", args[1].c_str(),
                   names.c_str());
      return 2;
    }
  }
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  try {
    app.parse(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return selected ? selected() : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bitnet: error: %s\n", e.what());
    return 1;
  }
}
