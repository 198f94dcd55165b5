#pragma once
// The HTML report of a training run (report.h): train and validation loss in nats and as perplexity, the learning
// rate and weight decay schedules, the gradient norm, tokens/s and the fraction of ternary weights that flipped in
// each log interval. `bitnet train` rewrites RUN/report.html at every log row; `bitnet report RUN_A RUN_B` puts
// runs side by side, with the validation-loss gap between the first and the others (ternary against full
// precision when those are the runs).
#include <bitnet/analyze.h>
#include <bitnet/report.h>
#include <bitnet/train_log.h>

#include <string>
#include <utility>
#include <vector>

namespace bitnet::train {

report::HtmlPage training_page(const std::string& title, const std::vector<LogRow>& rows,
                               const std::vector<std::pair<std::string, std::string>>& facts, int64_t total_steps = -1);

// The report of one run directory from its train_log.csv (what `bitnet train` writes as report.html), e.g. to
// regenerate it from a log kept elsewhere.
report::HtmlPage training_run_page(const std::string& run_dir, const std::string& title);

// Each directory holds train_log.csv (and run.json, whose quant.weight labels the run when present).
report::HtmlPage training_comparison_page(const std::vector<std::string>& run_dirs, const std::string& title);

// `bitnet analyze --report`: per-layer output and weight SQNR, cosine, MSE, zero share and flips as bar charts, the
// layers in the given order (analyze_model ranks them worst first); the charts show the first `chart_layers`.
report::HtmlPage analysis_page(const std::string& title, const std::vector<LayerAnalysis>& layers,
                               const std::vector<std::pair<std::string, std::string>>& facts, size_t chart_layers = 48);

}  // namespace bitnet::train
