// `bitnet report`: one HTML report from earlier results. Benchmark JSON files (`bitnet bench -o json`, llama-bench's
// `-o json`, Google Benchmark's JSON) are merged into a comparison; training run directories into a training
// comparison (train and validation loss, schedules, flips, the ternary-vs-full-precision gap). With --baseline it is
// also the regression gate (exit 3 on a regression beyond the threshold and the noise).
#include <bitnet/error.h>
#include <bitnet/train_report.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "bench_report.h"
#include "commands.h"

namespace bitnet::cli {

void add_report_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("report", "An HTML report with charts from benchmark JSON files or training runs "
                                           "(comparison; --baseline: the regression gate)");
  struct Options {
    std::vector<std::string> inputs;
    std::string output, title, baseline, max_regression = "5%";
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("inputs", o->inputs, "Benchmark JSON files (bitnet bench / llama-bench / Google Benchmark), or training run directories")
      ->required();
  cmd->add_option("-o,--output", o->output, "The HTML file to write");
  cmd->add_option("--title", o->title, "The report's title");
  auto* baseline = cmd->add_option("--baseline", o->baseline, "Benchmark JSON to compare every input with, test by test (exit 3 on a regression)");
  cmd->add_option("--max-regression", o->max_regression, "With --baseline: the slowdown allowed beyond the noise")
      ->capture_default_str()->needs(baseline);
  cmd->callback([&selected, o] {
    selected = [o] {
      BITNET_CHECK(!o->output.empty() || !o->baseline.empty(),
                   "[report] nothing to do: give -o FILE.html for the report and/or --baseline OLD.json for the gate");
      size_t dirs = 0;
      for (const auto& in : o->inputs) dirs += std::filesystem::is_directory(in) ? 1 : 0;
      BITNET_CHECK(dirs == 0 || dirs == o->inputs.size(),
                   "[report] give benchmark JSON files or training run directories, not both");
      if (dirs > 0) {
        BITNET_CHECK(o->baseline.empty(), "[report] --baseline compares benchmark results, not training runs");
        BITNET_CHECK(!o->output.empty(), "[report] give -o FILE.html for the training report");
        if (dirs == 1)
          train::training_run_page(o->inputs[0], o->title.empty() ? "bitnet training run" : o->title).write(o->output);
        else
          train::training_comparison_page(o->inputs, o->title.empty() ? "bitnet training runs" : o->title).write(o->output);
        std::fprintf(stderr, "report: %s\n", o->output.c_str());
        return 0;
      }
      // Each file is a source, named by its file name unless two share one (then by the path given).
      std::vector<Measurement> rows;
      for (const auto& in : o->inputs) {
        const std::string name = std::filesystem::path(in).filename().string();
        const bool shared = std::count_if(o->inputs.begin(), o->inputs.end(), [&](const std::string& other) {
                              return std::filesystem::path(other).filename().string() == name;
                            }) > 1 ||
                            (!o->baseline.empty() && std::filesystem::path(o->baseline).filename().string() == name);
        auto m = read_measurements(in, shared ? in : name);
        rows.insert(rows.end(), m.begin(), m.end());
      }
      // The baseline goes first in the report, so that the change chart is against it.
      std::vector<Measurement> base;
      if (!o->baseline.empty()) base = read_measurements(o->baseline, "baseline " + o->baseline);
      if (!o->output.empty()) {
        std::vector<Measurement> all = base;
        all.insert(all.end(), rows.begin(), rows.end());
        benchmark_page(all, o->title.empty() ? "bitnet benchmark comparison" : o->title, std::nullopt).write(o->output);
        std::fprintf(stderr, "report: %s\n", o->output.c_str());
      }
      if (!o->baseline.empty()) {
        const double threshold = parse_fraction(o->max_regression, "--max-regression");
        if (print_deltas(compare_to_baseline(base, rows, threshold), threshold)) return 3;
      }
      return 0;
    };
  });
}

}  // namespace bitnet::cli
