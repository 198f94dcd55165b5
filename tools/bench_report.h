#pragma once
// Benchmark results as reports and as a regression gate. Three kinds of JSON are read into one shape: `bitnet bench
// -o json` (or jsonl), llama.cpp's `llama-bench -o json`, and Google Benchmark's `--benchmark_format=json` (the kernel
// micro-benchmarks). Every value is a rate (higher is better) with its repetitions, so that a report can show the
// spread and the gate can tell a change from noise.
#include <bitnet/report.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace bitnet::cli {

struct Measurement {
  std::string source;    // which run: a file name, "this run", a label
  std::string model;     // model description (bitnet, llama-bench) or the benchmark binary's context
  std::string backend;
  std::string test;      // pp512, tg128, BM_TernaryGemv/2560/6912 ...
  int threads = 0;
  std::string unit;      // "t/s", "items/s", "B/s", "1/s"
  std::vector<double> samples;
  double mean = 0, stddev = 0;
  // Decode tests measured against the read bandwidth: each repetition's fraction of its roofline, and the
  // bandwidth itself (GB/s). Comparing fractions takes the machine's bandwidth swings out of a comparison.
  std::vector<double> roofline_samples;
  double read_bandwidth_gb_s = 0;
  std::string machine;   // CPU and ISA variant where the file says
  std::string commit;

  std::string key() const;  // test + threads: what is compared between runs
};

// Reads any of the three formats (detected from the content); `label` becomes Measurement::source.
std::vector<Measurement> read_measurements(const std::string& path, const std::string& label = {});
// The same from parsed JSON (`what` names it in errors).
std::vector<Measurement> measurements_from_json(const nlohmann::json& doc, const std::string& source, const std::string& what);

struct MachineInfo {
  std::string cpu, isa, commit;
  int threads = 0;
  double read_bandwidth_gb_s = 0;
};
MachineInfo this_machine();

// The report: a table, t/s per test with the spread of the repetitions (min..max), the roofline fraction with the
// measured bandwidth, thread scaling when several thread counts were run, and a comparison when the measurements
// come from several sources.
report::HtmlPage benchmark_page(const std::vector<Measurement>& rows, const std::string& title,
                                const std::optional<MachineInfo>& machine);

// The regression gate: each test of `current` against the same test (and thread count) in `baseline`.
struct Delta {
  std::string key;                   // Measurement::key()
  std::string test;
  int threads = 0;
  double baseline = 0, current = 0;  // means
  double change = 0;                 // current / baseline - 1 (of the roofline fraction when both have one)
  double noise = 0;                  // 2 standard errors of the difference, relative
  bool by_roofline = false;
  enum class Verdict { ok, faster, within_noise, regression, missing } verdict = Verdict::ok;
};
std::vector<Delta> compare_to_baseline(const std::vector<Measurement>& baseline, const std::vector<Measurement>& current,
                                       double max_regression);
// Prints the deltas (to `out`); returns true when any test regressed beyond the threshold and the noise.
bool print_deltas(const std::vector<Delta>& deltas, double max_regression, std::FILE* out = stdout);
// "5%", "5", "0.05" -> 0.05.
double parse_fraction(const std::string& text, const std::string& flag);

}  // namespace bitnet::cli
