// The training reports (train_report.h).
#include <bitnet/error.h>
#include <bitnet/train_report.h>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace bitnet::train {

namespace {

using report::LineChart;
using report::Series;

Series series_of(const std::string& name, const std::vector<LogRow>& rows, double LogRow::*field, bool markers = false,
                 double (*map)(double) = nullptr) {
  Series s;
  s.name = name;
  s.markers = markers;
  for (const LogRow& r : rows) {
    const double v = r.*field;
    if (!std::isfinite(v)) continue;
    s.x.push_back(static_cast<double>(r.step));
    s.y.push_back(map ? map(v) : v);
  }
  return s;
}

double perplexity(double nats) { return std::exp(nats); }

// The single-run charts go two to a row on a wide screen.
constexpr int kHalf = 570, kHalfH = 300;

LineChart chart(const std::string& title, const std::string& y_label, std::vector<Series> series, bool log_y = false,
                bool include_zero = true) {
  LineChart c;
  c.y.include_zero = include_zero;
  c.title = title;
  c.x.label = "step";
  c.x.integer = true;
  c.y.label = y_label;
  c.y.log = log_y;
  for (auto& s : series)
    if (!s.x.empty()) c.series.push_back(std::move(s));
  return c;
}

std::string fixed(double v, int digits) { return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : "-"; }

const LogRow* last_with(const std::vector<LogRow>& rows, double LogRow::*field) {
  for (auto it = rows.rbegin(); it != rows.rend(); ++it)
    if (std::isfinite((*it).*field)) return &*it;
  return nullptr;
}

// "ternary", "none", ... from RUN/run.json's quant.weight, "" when it does not say.
std::string weight_kind(const std::filesystem::path& dir) {
  std::ifstream f(dir / "run.json");
  if (!f) return {};
  try {
    const nlohmann::json j = nlohmann::json::parse(f, nullptr, true, true);
    if (j.contains("quant") && j["quant"].is_object() && j["quant"].contains("weight") && j["quant"]["weight"].is_string())
      return j["quant"]["weight"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  return {};
}

}  // namespace

report::HtmlPage training_page(const std::string& title, const std::vector<LogRow>& rows,
                               const std::vector<std::pair<std::string, std::string>>& facts, int64_t total_steps) {
  const LogRow* last = rows.empty() ? nullptr : &rows.back();
  const LogRow* last_val = last_with(rows, &LogRow::val_loss);
  std::string subtitle = last ? fmt::format("step {}{} · train loss {} · {:.0f} tokens/s", last->step + 1,
                                            total_steps > 0 ? fmt::format(" of {}", total_steps) : "", fixed(last->loss, 4),
                                            last->tokens_per_s)
                              : "no step logged yet";
  if (last_val) subtitle += fmt::format(" · validation loss {} (perplexity {})", fixed(last_val->val_loss, 4),
                                        fixed(std::exp(last_val->val_loss), 2));
  report::HtmlPage page(title, subtitle);
  page.definition_list(facts);
  page.chart(chart("Loss", "nats per token",
                   {series_of("train", rows, &LogRow::loss), series_of("validation", rows, &LogRow::val_loss, true)},
                   false, false)
                 .svg(kHalf, kHalfH), "Training loss averaged over each log interval; validation loss where it ran.", "loss");
  page.chart(chart("Perplexity", "perplexity (log scale)",
                   {series_of("train", rows, &LogRow::loss, false, perplexity),
                    series_of("validation", rows, &LogRow::val_loss, true, perplexity)},
                   true)
                 .svg(kHalf, kHalfH), "exp(loss).", "perplexity");
  page.chart(chart("Learning rate", "learning rate", {series_of("", rows, &LogRow::lr)}).svg(kHalf, kHalfH), "", "lr");
  page.chart(chart("Weight decay", "weight decay", {series_of("", rows, &LogRow::weight_decay)}).svg(kHalf, kHalfH), "", "wd");
  page.chart(chart("Gradient norm (before clipping)", "L2 norm", {series_of("", rows, &LogRow::grad_norm)}).svg(kHalf, kHalfH), "",
             "grad-norm");
  page.chart(chart("Throughput", "tokens/s", {series_of("", rows, &LogRow::tokens_per_s)}).svg(kHalf, kHalfH), "", "tokens-per-s");
  LineChart flips = chart("Flipped weights per log interval", "share of quantized weights",
                          {series_of("", rows, &LogRow::flip_fraction, true)});
  flips.y = report::percent_axis("share of quantized weights");
  page.chart(flips.svg(kHalf, kHalfH), "Weights whose quantized sign class (-, 0, +) changed since the previous row: ternary "
                          "training is healthy when this falls steadily (training.md: the flip rate is the key "
                          "diagnostic of learning-rate and weight-decay trouble).", "flips");
  std::vector<std::vector<std::string>> table;
  for (auto it = rows.rbegin(); it != rows.rend() && table.size() < 12; ++it)
    table.push_back({std::to_string(it->step), fixed(it->loss, 4), fixed(it->val_loss, 4), fmt::format("{:.3g}", it->lr),
                     fmt::format("{:.3g}", it->weight_decay), fixed(it->grad_norm, 3), fixed(it->tokens_per_s, 0),
                     std::isfinite(it->flip_fraction) ? fmt::format("{:.3f}%", 100 * it->flip_fraction) : "-",
                     fixed(it->elapsed_s, 1)});
  page.heading("Last rows of train_log.csv");
  page.table({"step", "loss", "val loss", "lr", "wd", "grad norm", "tokens/s", "flipped", "elapsed s"}, table);
  return page;
}

report::HtmlPage training_run_page(const std::string& run_dir, const std::string& title) {
  const std::filesystem::path dir(run_dir);
  const auto csv = dir / "train_log.csv";
  BITNET_CHECK(std::filesystem::is_regular_file(csv), "[report] '{}' is not a training run: it has no train_log.csv", run_dir);
  std::vector<std::pair<std::string, std::string>> facts = {{"run", run_dir}, {"log", csv.string()}};
  const std::string kind = weight_kind(dir);
  if (!kind.empty()) facts.emplace_back("weights", kind);
  return training_page(title, read_train_log(csv.string()), facts);
}

report::HtmlPage training_comparison_page(const std::vector<std::string>& run_dirs, const std::string& title) {
  BITNET_CHECK(!run_dirs.empty(), "[report] no training runs given");
  struct Run {
    std::string name;
    std::vector<LogRow> rows;
  };
  std::vector<Run> runs;
  for (const auto& d : run_dirs) {
    const std::filesystem::path dir(d);
    const auto csv = dir / "train_log.csv";
    BITNET_CHECK(std::filesystem::is_regular_file(csv), "[report] '{}' is not a training run: it has no train_log.csv", d);
    std::string name = std::filesystem::absolute(dir).lexically_normal().filename().string();
    if (name.empty()) name = d;
    const std::string kind = weight_kind(dir);
    if (!kind.empty()) name += " (" + kind + ")";
    runs.push_back({name, read_train_log(csv.string())});
  }
  report::HtmlPage page(title, fmt::format("{} runs: {}", runs.size(), [&] {
                          std::string s;
                          for (const auto& r : runs) s += (s.empty() ? "" : ", ") + r.name;
                          return s;
                        }()));
  std::vector<Series> train, val, ppl, flips, lr;
  for (const auto& r : runs) {
    // A run's training and validation losses share its colour: solid with dots, and dashed.
    const int colour = static_cast<int>(&r - runs.data());
    Series t = series_of(r.name + " train", r.rows, &LogRow::loss);
    t.dashed = true;
    t.colour = colour;
    train.push_back(t);
    val.push_back(series_of(r.name + " validation", r.rows, &LogRow::val_loss, true));
    val.back().colour = colour;
    ppl.push_back(series_of(r.name, r.rows, &LogRow::val_loss, true, perplexity));
    flips.push_back(series_of(r.name, r.rows, &LogRow::flip_fraction, true));
    lr.push_back(series_of(r.name, r.rows, &LogRow::lr));
  }
  std::vector<Series> loss = val;
  loss.insert(loss.end(), train.begin(), train.end());
  page.chart(chart("Loss of each run", "nats per token", loss, false, false).svg(900, 380),
             "Solid with dots: validation loss; dashed: training loss; one colour per run.", "loss");
  if (runs.size() > 1) {
    // The gap: each run's validation loss minus the first run's, at the steps both evaluated.
    std::map<int64_t, double> base;
    for (const auto& r : runs[0].rows)
      if (std::isfinite(r.val_loss)) base[r.step] = r.val_loss;
    std::vector<Series> gaps;
    for (size_t i = 1; i < runs.size(); ++i) {
      Series g;
      g.name = runs[i].name + " - " + runs[0].name;
      g.markers = true;
      for (const auto& r : runs[i].rows)
        if (std::isfinite(r.val_loss) && base.count(r.step)) {
          g.x.push_back(static_cast<double>(r.step));
          g.y.push_back(r.val_loss - base[r.step]);
        }
      gaps.push_back(std::move(g));
    }
    LineChart gc = chart("Validation-loss gap against " + runs[0].name, "difference (nats)", gaps);
    gc.y.min = NAN;
    page.chart(gc.svg(900, 340), "Positive: worse than the first run (for a ternary run against its full-precision "
                                 "twin, the cost of quantization).", "gap");
  }
  page.chart(chart("Validation perplexity", "perplexity (log scale)", ppl, true).svg(900, 340), "", "perplexity");
  LineChart fc = chart("Flipped weights per log interval", "share of quantized weights", flips);
  fc.y = report::percent_axis("share of quantized weights");
  page.chart(fc.svg(900, 340), "", "flips");
  page.chart(chart("Learning rate", "learning rate", lr).svg(900, 300), "", "lr");
  std::vector<std::vector<std::string>> table;
  for (const auto& r : runs) {
    const LogRow* last = r.rows.empty() ? nullptr : &r.rows.back();
    const LogRow* lv = last_with(r.rows, &LogRow::val_loss);
    table.push_back({r.name, last ? std::to_string(last->step + 1) : "0", last ? fixed(last->loss, 4) : "-",
                     lv ? fixed(lv->val_loss, 4) : "-", lv ? fixed(std::exp(lv->val_loss), 2) : "-",
                     last ? fixed(last->tokens_per_s, 0) : "-", last ? fixed(last->elapsed_s, 1) : "-"});
  }
  page.heading("Final figures");
  page.table({"run", "steps", "train loss", "val loss", "val perplexity", "tokens/s", "elapsed s"}, table);
  return page;
}

report::HtmlPage analysis_page(const std::string& title, const std::vector<LayerAnalysis>& layers,
                               const std::vector<std::pair<std::string, std::string>>& facts, size_t chart_layers) {
  report::HtmlPage page(title, fmt::format("{} projections, most sensitive first (lowest output SQNR)", layers.size()));
  page.definition_list(facts);
  const size_t n = std::min(chart_layers, layers.size());
  const std::string shown = n < layers.size() ? fmt::format(" The {} most sensitive of {} layers; the table has all.", n, layers.size()) : "";
  auto bars = [&](const std::string& chart_title, const report::Axis& axis,
                  const std::vector<std::pair<std::string, double (*)(const LayerAnalysis&)>>& metrics) {
    report::BarChart c;
    c.title = chart_title;
    c.horizontal = true;
    c.value = axis;
    for (size_t i = 0; i < n; ++i) c.categories.push_back(layers[i].name);
    for (const auto& [name, get] : metrics) {
      report::BarSeries s{name, {}, {}, {}};
      for (size_t i = 0; i < n; ++i) s.values.push_back(get(layers[i]));
      c.series.push_back(std::move(s));
    }
    return c.svg(900);
  };
  page.chart(bars("Signal-to-quantization-noise ratio", report::axis("SQNR (dB)"),
                  {{"output (Qa(x) Q(W) against x W)", [](const LayerAnalysis& a) { return std::isfinite(a.output.sqnr_db) ? a.output.sqnr_db : NAN; }},
                   {"weight (Q(W) against W)", [](const LayerAnalysis& a) { return std::isfinite(a.weight.sqnr_db) ? a.weight.sqnr_db : NAN; }}}),
             "Higher is better; an exact (unquantized) layer has no bar." + shown, "sqnr");
  page.chart(bars("Cosine distance (1 - cosine similarity)", report::axis("1 - cosine (log scale)", true),
                  {{"output", [](const LayerAnalysis& a) { return 1.0 - a.output.cosine; }},
                   {"weight", [](const LayerAnalysis& a) { return 1.0 - a.weight.cosine; }}}),
             "Lower is better." + shown, "cosine");
  page.chart(bars("Mean squared error", report::axis("MSE (log scale)", true),
                  {{"output", [](const LayerAnalysis& a) { return a.output.mse; }},
                   {"weight", [](const LayerAnalysis& a) { return a.weight.mse; }}}),
             shown, "mse");
  page.chart(bars("Zero weights", report::percent_axis("share of the quantized weights"),
                  {{"", [](const LayerAnalysis& a) { return a.zero_fraction; }}}),
             "Ternary absmean quantization zeroes about a third of the weights of a Gaussian matrix." + shown, "zeros");
  if (!layers.empty() && layers[0].flips >= 0)
    page.chart(bars("Flipped weights since the earlier checkpoint", report::percent_axis("share of the weights"),
                    {{"", [](const LayerAnalysis& a) { return a.flip_fraction; }}}),
               shown, "flips");
  std::vector<std::vector<std::string>> table;
  for (const auto& a : layers)
    table.push_back({a.name, fmt::format("{}x{}", a.rows, a.cols), a.weight_quant, a.act_quant,
                     fixed(a.output.sqnr_db, 2), fmt::format("{:.6f}", a.output.cosine), fmt::format("{:.3g}", a.output.mse),
                     fixed(a.weight.sqnr_db, 2), fmt::format("{:.3f}%", 100 * a.zero_fraction),
                     a.flips < 0 ? "-" : fmt::format("{} ({:.3f}%)", a.flips, 100 * a.flip_fraction)});
  page.heading("All layers");
  page.table({"layer", "shape", "weights", "activations", "output SQNR dB", "output cosine", "output MSE", "weight SQNR dB",
              "zeros", "flips"},
             table);
  return page;
}

}  // namespace bitnet::train
