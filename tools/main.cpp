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
  // Every option's help shows its default (the subcommands copy these settings when they are added).
  app.option_defaults()->always_capture_default();
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
  bitnet::cli::add_pull_command(app, selected);
  bitnet::cli::add_models_command(app, selected);
  bitnet::cli::add_report_command(app, selected);
  bitnet::cli::add_batched_bench_command(app, selected);
  // -t 0 is "not given": the help says what that means instead of showing a 0 the flag itself refuses.
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    for (CLI::Option* opt : sub->get_options([](CLI::Option*) { return true; }))
      if (opt->check_lname("threads") && opt->get_default_str() == "0") {
        opt->default_str("auto");
        if (opt->get_description().find("BITNET_THREADS") == std::string::npos)
          opt->description(opt->get_description() + " (auto: BITNET_THREADS or all CPUs)");
      }
  // llama.cpp's single-dash long flags (-sys, -ngl, -ctk) become the long names the selected subcommand declared
  // for them; an unknown command or flag is refused here, naming it, with the closest real one.
  std::vector<std::string> args(argv, argv + argc);
  if (const std::string error = bitnet::cli::prepare_args(app, args); !error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  try {
    app.parse(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0 || dynamic_cast<const CLI::CallForHelp*>(&e) != nullptr ||
        dynamic_cast<const CLI::CallForAllHelp*>(&e) != nullptr)
      return app.exit(e);
    // Errors name the command and where its flags are listed.
    std::string command;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
      if (args.size() > 1 && sub->get_name() == args[1]) command = args[1];
    std::fprintf(stderr, "bitnet%s%s: %s (bitnet %s--help lists the flags)\n", command.empty() ? "" : " ",
                 command.c_str(), e.what(), command.empty() ? "" : (command + " ").c_str());
    return e.get_exit_code();
  }
  try {
    return selected ? selected() : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bitnet: error: %s\n", e.what());
    return 1;
  }
}
