// `bitnet analyze CHECKPOINT [--since EARLIER]`: per-layer quantization diagnostics of a trained model's latent
// weights (bitnet/analyze.h), ranked by sensitivity.
#include <bitnet/analyze.h>
#include <bitnet/thread_pool.h>
#include <bitnet/train.h>
#include <bitnet/train_report.h>
#include <bitnet/train_run.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace bitnet::cli {

namespace {
nlohmann::json error_json(const QuantError& e) {
  // JSON has no infinity: an exact (full-precision) layer's SQNR is null.
  return {{"mse", e.mse}, {"sqnr_db", std::isfinite(e.sqnr_db) ? nlohmann::json(e.sqnr_db) : nlohmann::json()},
          {"cosine", e.cosine}};
}
}  // namespace

void add_analyze_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("analyze", "Per-layer quantization error, zeros and ternary flips of a training checkpoint");
  auto source = std::make_shared<std::string>();
  auto config = std::make_shared<std::string>();
  auto since = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto windows = std::make_shared<int64_t>(4);
  auto threads = std::make_shared<int>(0);
  auto json = std::make_shared<bool>(false);
  auto report_file = std::make_shared<std::string>();
  cmd->add_option("model", *source, "A training run's output dir or checkpoint (.safetensors, latent weights)")->required();
  cmd->add_option("-c,--config", *config, "The run's JSON config (default: run.json beside the checkpoint)");
  cmd->add_option("--since", *since, "An earlier checkpoint of the same run: count the ternary weights that flipped");
  cmd->add_option("--text", *text, "Sample text for the output errors (default: the run's validation text)");
  cmd->add_option("--windows", *windows, "Sample windows of data.seq_len tokens")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("-t,--threads", *threads, "Threads to use")->check(CLI::Range(1, 1024));
  cmd->add_flag("--json", *json, "One JSON object: the checkpoint, its step and the ranked layers");
  cmd->add_option("--report", *report_file, "Also write an HTML report: per-layer SQNR, cosine, MSE, zeros and flips as bar charts, worst first");
  cmd->callback([&selected, source, config, since, text, windows, threads, json, report_file] {
    selected = [source, config, since, text, windows, threads, json, report_file]() {
      if (*threads > 0) set_default_thread_count(*threads);
      const train::RunConfig rc = train::find_run_config(*source, *config);
      const std::string ckpt = train::find_checkpoint(*source);
      int64_t step = -1, step0 = -1;
      nn::CausalLM lm(rc.model, rc.quant);
      lm.load_state_dict(train::load_checkpoint_weights(ckpt, &step));
      lm.eval();
      std::unique_ptr<nn::CausalLM> earlier;
      if (!since->empty()) {
        earlier = std::make_unique<nn::CausalLM>(rc.model, rc.quant);
        earlier->load_state_dict(train::load_checkpoint_weights(*since, &step0));
      }
      const Tensor sample = train::run_sample_tokens(rc, *windows, *text);
      const auto layers = train::analyze_model(lm, sample, earlier.get());
      if (!report_file->empty()) {
        std::vector<std::pair<std::string, std::string>> facts = {
            {"checkpoint", ckpt}, {"step", step >= 0 ? std::to_string(step) : "final"},
            {"sample tokens", std::to_string(sample.numel())}};
        if (earlier) facts.emplace_back("flips since", *since + (step0 >= 0 ? fmt::format(" (step {})", step0) : ""));
        train::analysis_page("bitnet analyze: " + ckpt, layers, facts).write(*report_file);
        std::fprintf(stderr, "report: %s\n", report_file->c_str());
      }
      if (*json) {
        nlohmann::json out = {{"checkpoint", ckpt}, {"step", step}, {"sample_tokens", sample.numel()},
                              {"since", since->empty() ? nlohmann::json() : nlohmann::json(*since)},
                              {"layers", nlohmann::json::array()}};
        for (const auto& a : layers)
          out["layers"].push_back({{"name", a.name}, {"rows", a.rows}, {"cols", a.cols}, {"weight_quant", a.weight_quant},
                                   {"act_quant", a.act_quant}, {"weight", error_json(a.weight)},
                                   {"output", error_json(a.output)}, {"zero_fraction", a.zero_fraction},
                                   {"flips", a.flips < 0 ? nlohmann::json() : nlohmann::json(a.flips)},
                                   {"flip_fraction", a.flip_fraction}});
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
      }
      std::printf("bitnet analyze: %s (%s), %lld sample tokens; ranked by output SQNR (most sensitive first)%s\n",
                  ckpt.c_str(), step >= 0 ? fmt::format("step {}", step).c_str() : "final",
                  static_cast<long long>(sample.numel()),
                  earlier ? fmt::format("; flips since {} ({})", *since,
                                        step0 >= 0 ? fmt::format("step {}", step0) : std::string("final")).c_str()
                          : "");
      std::printf("%s", train::format_analysis(layers).c_str());
      return 0;
    };
  });
}

}  // namespace bitnet::cli
