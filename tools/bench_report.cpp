// Benchmark measurements: readers for the three JSON kinds, the HTML report and the regression gate
// (bench_report.h).
#include "bench_report.h"

#include <bitnet/cpu.h>
#include <bitnet/error.h>
#include <bitnet/files.h>
#include <bitnet/git_commit.h>
#include <bitnet/kernels.h>
#include <bitnet/thread_pool.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace bitnet::cli {

namespace {

using nlohmann::json;

json parse(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail("[report] '{}' is not valid JSON: {}", what, e.what());
  }
}

void finish(Measurement& m) {
  if (m.samples.empty()) return;
  double sum = 0, sq = 0;
  for (double v : m.samples) sum += v;
  m.mean = sum / static_cast<double>(m.samples.size());
  for (double v : m.samples) sq += (v - m.mean) * (v - m.mean);
  m.stddev = m.samples.size() > 1 ? std::sqrt(sq / static_cast<double>(m.samples.size() - 1)) : 0.0;
}

double number(const json& j, const char* key, double fallback = 0) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string text(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<double> numbers(const json& j, const char* key) {
  std::vector<double> out;
  const auto it = j.find(key);
  if (it != j.end() && it->is_array())
    for (const auto& v : *it)
      if (v.is_number()) out.push_back(v.get<double>());
  return out;
}

// The fields bitnet bench writes under llama-bench's names: the repetitions, the CPU and the commit.
Measurement tokens_per_second(const json& r, const std::string& source) {
  Measurement m;
  m.source = source;
  m.unit = "t/s";
  m.samples = numbers(r, "samples_ts");
  if (m.samples.empty()) m.samples.push_back(number(r, "avg_ts"));
  m.machine = text(r, "cpu_info");
  m.commit = text(r, "build_commit");
  finish(m);
  return m;
}

std::vector<Measurement> from_bitnet(const json& rows, const std::string& source) {
  std::vector<Measurement> out;
  for (const auto& r : rows) {
    Measurement m = tokens_per_second(r, source);
    m.model = text(r, "model");
    m.backend = text(r, "backend");
    m.test = text(r, "test");
    m.threads = static_cast<int>(number(r, "threads"));
    m.roofline_samples = numbers(r, "samples_roofline_fraction");
    m.read_bandwidth_gb_s = number(r, "read_bandwidth_gb_per_s");
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<Measurement> from_llama_bench(const json& rows, const std::string& source) {
  std::vector<Measurement> out;
  for (const auto& r : rows) {
    Measurement m = tokens_per_second(r, source);
    m.model = text(r, "model_type");
    if (m.model.empty()) m.model = text(r, "model_filename");
    m.backend = "llama.cpp " + text(r, "backends");
    const int p = static_cast<int>(number(r, "n_prompt")), g = static_cast<int>(number(r, "n_gen"));
    const int d = static_cast<int>(number(r, "n_depth"));
    m.test = p > 0 && g > 0 ? fmt::format("pp{}+tg{}", p, g) : p > 0 ? fmt::format("pp{}", p) : fmt::format("tg{}", g);
    if (d > 0) m.test += fmt::format(" @ d{}", d);
    m.threads = static_cast<int>(number(r, "n_threads"));
    out.push_back(std::move(m));
  }
  return out;
}

// Google Benchmark: one "iteration" row per repetition (aggregates are recomputed here from them).
std::vector<Measurement> from_google_benchmark(const json& doc, const std::string& source) {
  std::map<std::string, Measurement> by_name;
  std::vector<std::string> order;
  const json& ctx = doc.contains("context") ? doc["context"] : json::object();
  for (const auto& b : doc["benchmarks"]) {
    if (!b.is_object() || text(b, "run_type") == "aggregate" || b.contains("error_occurred")) continue;
    std::string name = text(b, "run_name").empty() ? text(b, "name") : text(b, "run_name");
    if (name.ends_with("/real_time")) name.resize(name.size() - 10);  // how it was timed, not what
    double v = number(b, "items_per_second", NAN);
    std::string unit = "items/s";
    if (!std::isfinite(v)) v = number(b, "bytes_per_second", NAN), unit = "B/s";
    if (!std::isfinite(v)) {
      const std::string tu = text(b, "time_unit");
      const double scale = tu == "ms" ? 1e-3 : tu == "us" ? 1e-6 : tu == "s" ? 1.0 : 1e-9;
      const double t = number(b, "real_time", NAN) * scale;
      v = t > 0 ? 1.0 / t : NAN;
      unit = "1/s";
    }
    if (!std::isfinite(v)) continue;
    auto [it, fresh] = by_name.try_emplace(name);
    Measurement& m = it->second;
    if (fresh) {
      order.push_back(name);
      m.source = source;
      m.model = text(ctx, "executable");
      m.backend = "CPU";
      m.test = name;
      // Google Benchmark's own thread count (1 unless the benchmark asks for more); our kernels take theirs
      // as an argument in the name, so 1 is not shown.
      const int threads = static_cast<int>(number(b, "threads", 1));
      m.threads = threads > 1 ? threads : 0;
      m.unit = unit;
      m.machine = fmt::format("{} CPUs @ {:.0f} MHz", number(ctx, "num_cpus"), number(ctx, "mhz_per_cpu"));
    }
    m.samples.push_back(v);
  }
  std::vector<Measurement> out;
  for (const auto& n : order) {
    finish(by_name[n]);
    out.push_back(by_name[n]);
  }
  return out;
}

std::string fmt_rate(double v, const std::string& unit) {
  if (unit == "t/s") return fmt::format("{:.2f}", v);
  return report::tick_label(v) + " " + unit;
}

double min_of(const std::vector<double>& v) { return v.empty() ? NAN : *std::min_element(v.begin(), v.end()); }
double max_of(const std::vector<double>& v) { return v.empty() ? NAN : *std::max_element(v.begin(), v.end()); }
double median_of(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Mean and standard error of the mean of a sample.
std::pair<double, double> mean_and_sem(const std::vector<double>& v) {
  if (v.empty()) return {NAN, 0};
  double sum = 0, sq = 0;
  for (double x : v) sum += x;
  const double mean = sum / static_cast<double>(v.size());
  for (double x : v) sq += (x - mean) * (x - mean);
  const double sd = v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0.0;
  return {mean, sd / std::sqrt(static_cast<double>(v.size()))};
}

}  // namespace

std::string Measurement::key() const { return threads > 0 ? fmt::format("{} (t={})", test, threads) : test; }

std::vector<Measurement> read_measurements(const std::string& path, const std::string& label) {
  const std::string body = read_regular_file(path, uint64_t{256} << 20);
  const std::string source = label.empty() ? std::filesystem::path(path).filename().string() : label;
  json doc;
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && body[first] == '{' && body.find("\n{", first) != std::string::npos &&
      body.find("\"benchmarks\"") == std::string::npos) {
    doc = json::array();  // JSON lines (bitnet bench -o jsonl)
    std::istringstream lines(body);
    std::string line;
    int n = 0;
    while (std::getline(lines, line))
      if (line.find_first_not_of(" \t\r") != std::string::npos)
        doc.push_back(parse(line, fmt::format("{} line {}", path, ++n)));
  } else {
    doc = parse(body, path);
  }
  return measurements_from_json(doc, source, path);
}

std::vector<Measurement> measurements_from_json(const json& doc, const std::string& source, const std::string& what) {
  std::vector<Measurement> out;
  if (doc.is_object() && doc.contains("benchmarks") && doc["benchmarks"].is_array()) {
    out = from_google_benchmark(doc, source);
  } else if (doc.is_array() && !doc.empty() && doc[0].is_object() && doc[0].contains("n_prompt")) {
    out = from_llama_bench(doc, source);
  } else if (doc.is_array() && !doc.empty() && doc[0].is_object() && doc[0].contains("test") && doc[0].contains("avg_ts")) {
    out = from_bitnet(doc, source);
  } else {
    fail("[report] '{}' is not a benchmark result: expected `bitnet bench -o json`, `llama-bench -o json` or Google "
         "Benchmark's --benchmark_format=json output", what);
  }
  if (out.empty()) fail("[report] '{}' holds no measurements", what);
  return out;
}

MachineInfo this_machine() {
  MachineInfo m;
  m.cpu = cpu_features().brand;
  m.isa = isa_name(preferred_isa());
  m.commit = kGitCommit;
  m.threads = default_pool().size();
  return m;
}

report::HtmlPage benchmark_page(const std::vector<Measurement>& rows, const std::string& title,
                                const std::optional<MachineInfo>& machine) {
  std::vector<std::string> sources, tests;
  std::set<int> thread_counts;
  for (const auto& r : rows) {
    if (std::find(sources.begin(), sources.end(), r.source) == sources.end()) sources.push_back(r.source);
    if (std::find(tests.begin(), tests.end(), r.test) == tests.end()) tests.push_back(r.test);
    thread_counts.insert(r.threads);
  }
  std::string subtitle;
  if (machine)
    subtitle = fmt::format("{} · {} kernels · {} threads · commit {}", machine->cpu, machine->isa, machine->threads,
                           machine->commit);
  report::HtmlPage page(title, subtitle);
  if (machine) {
    std::vector<std::pair<std::string, std::string>> items = {
        {"CPU", machine->cpu}, {"kernel variant", machine->isa}, {"threads", std::to_string(machine->threads)},
        {"commit", machine->commit}};
    if (machine->read_bandwidth_gb_s > 0)
      items.emplace_back("read bandwidth", fmt::format("{:.1f} GB/s (median of the probes around the decode runs)",
                                                       machine->read_bandwidth_gb_s));
    page.definition_list(items);
  } else {
    std::vector<std::pair<std::string, std::string>> items;
    std::set<std::string> seen;
    for (const auto& r : rows)
      if (seen.insert(r.source).second)
        items.emplace_back(r.source, fmt::format("{} · {} · {}{}", r.model, r.backend, r.machine.empty() ? "?" : r.machine,
                                                 r.commit.empty() ? "" : " · commit " + r.commit));
    page.definition_list(items);
  }

  // Throughput per test and source/thread count, with the spread of the repetitions; one chart per unit.
  std::vector<std::string> units;
  for (const auto& r : rows)
    if (std::find(units.begin(), units.end(), r.unit) == units.end()) units.push_back(r.unit);
  for (const auto& unit : units) {
    report::BarChart c;
    c.title = unit == "t/s" ? "Throughput per test (tokens/s; bars: mean, whiskers: min..max of the repetitions)"
                            : "Throughput per benchmark (" + unit + "; whiskers: min..max)";
    c.value.label = unit;
    std::vector<std::string> cats;
    for (const auto& t : tests)
      for (const auto& r : rows)
        if (r.test == t && r.unit == unit) {
          cats.push_back(t);
          break;
        }
    c.categories = cats;
    std::map<std::string, size_t> series_index;
    for (const auto& r : rows) {
      if (r.unit != unit) continue;
      const std::string name = (sources.size() > 1 ? r.source + " " : "") + (thread_counts.size() > 1 ? fmt::format("t={}", r.threads) : "");
      auto [it, fresh] = series_index.try_emplace(name, c.series.size());
      if (fresh) c.series.push_back({name, std::vector<double>(cats.size(), NAN), std::vector<double>(cats.size(), NAN),
                                     std::vector<double>(cats.size(), NAN)});
      const size_t ci = static_cast<size_t>(std::find(cats.begin(), cats.end(), r.test) - cats.begin());
      report::BarSeries& s = c.series[it->second];
      s.values[ci] = r.mean;
      s.lo[ci] = min_of(r.samples);
      s.hi[ci] = max_of(r.samples);
    }
    // Results two orders of magnitude apart (a small model beside a large one) share a log axis.
    double lo = INFINITY, hi = 0;
    for (const auto& s : c.series)
      for (double v : s.values)
        if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
    if (hi > 100 * lo) {
      c.value.log = true;
      c.value.label += " (log scale)";
    }
    // Long names (kernel benchmarks) or many tests read better down the side.
    size_t longest = 0;
    for (const auto& cat : cats) longest = std::max(longest, cat.size());
    const bool many = cats.size() > 12 || longest > 14;
    c.horizontal = many;
    page.chart(c.svg(many ? 1000 : 760, 360), "", "throughput-" + std::to_string(&unit - units.data()));
  }

  // The roofline: decode reads every weight once per token, so t/s x bytes/token over the read bandwidth is the
  // fraction of the machine's memory speed that decode reaches.
  report::BarChart roof;
  roof.title = "Decode against the memory roofline (median of the repetitions; whiskers: min..max)";
  roof.value = report::percent_axis("fraction of the read bandwidth");
  report::BarSeries rs{"", {}, {}, {}};
  std::vector<std::string> roof_notes;
  for (const auto& r : rows) {
    if (r.roofline_samples.empty()) continue;
    roof.categories.push_back((sources.size() > 1 ? r.source + " " : "") + r.key());
    rs.values.push_back(median_of(r.roofline_samples));
    rs.lo.push_back(min_of(r.roofline_samples));
    rs.hi.push_back(max_of(r.roofline_samples));
    roof_notes.push_back(fmt::format("{}: {:.1f} GB/s", r.key(), r.read_bandwidth_gb_s));
  }
  if (!roof.categories.empty()) {
    roof.series.push_back(rs);
    std::string caption = "Read bandwidth probed around each decode repetition: ";
    for (size_t i = 0; i < roof_notes.size(); ++i) caption += (i ? "; " : "") + roof_notes[i];
    page.chart(roof.svg(760, 320), caption, "roofline");
  }

  // Thread scaling: t/s against threads, per test and source.
  if (thread_counts.size() > 1) {
    report::LineChart c;
    c.title = "Thread scaling (mean t/s; whiskers: min..max)";
    c.x.label = "threads";
    c.x.integer = true;
    c.y.label = "tokens/s";
    for (const auto& src : sources)
      for (const auto& t : tests) {
        report::Series s;
        s.name = (sources.size() > 1 ? src + " " : "") + t;
        s.markers = true;
        for (const auto& r : rows)
          if (r.source == src && r.test == t && r.unit == "t/s") {
            s.x.push_back(r.threads);
            s.y.push_back(r.mean);
            s.lo.push_back(min_of(r.samples));
            s.hi.push_back(max_of(r.samples));
          }
        if (s.x.size() > 1) c.series.push_back(std::move(s));
      }
    if (!c.series.empty()) page.chart(c.svg(760, 340), "", "thread-scaling");
  }

  // Against the first source: the relative change per test (a comparison report).
  if (sources.size() > 1) {
    report::BarChart c;
    c.title = "Change against the first source";
    c.value = report::percent_axis("change", false);
    std::map<std::string, const Measurement*> base;
    for (const auto& r : rows)
      if (r.source == sources[0]) base[r.key()] = &r;
    for (const auto& r : rows)
      if (r.source == sources[0] && std::find(c.categories.begin(), c.categories.end(), r.key()) == c.categories.end())
        c.categories.push_back(r.key());
    for (size_t si = 1; si < sources.size(); ++si) {
      report::BarSeries s{sources[si], std::vector<double>(c.categories.size(), NAN), std::vector<double>(c.categories.size(), NAN),
                          std::vector<double>(c.categories.size(), NAN)};
      for (const auto& r : rows) {
        if (r.source != sources[si] || !base.count(r.key())) continue;
        const size_t ci = static_cast<size_t>(std::find(c.categories.begin(), c.categories.end(), r.key()) - c.categories.begin());
        const double b = base[r.key()]->mean;
        s.values[ci] = r.mean / b - 1;
        s.lo[ci] = min_of(r.samples) / b - 1;
        s.hi[ci] = max_of(r.samples) / b - 1;
      }
      c.series.push_back(std::move(s));
    }
    size_t longest = 0;
    for (const auto& cat : c.categories) longest = std::max(longest, cat.size());
    c.horizontal = c.categories.size() > 12 || longest > 14;
    if (!c.categories.empty())
      page.chart(c.svg(c.horizontal ? 1000 : 760, 340),
                 "Against " + sources[0] + ": the change of the mean, whiskers from the other run's min..max. Tests are "
                 "matched by name and thread count.", "change");
  }

  std::vector<std::vector<std::string>> table;
  for (const auto& r : rows)
    table.push_back({r.source, r.model, r.backend, r.threads > 0 ? std::to_string(r.threads) : "", r.test,
                     fmt::format("{} ± {}", fmt_rate(r.mean, r.unit), fmt_rate(r.stddev, r.unit)),
                     fmt::format("{} .. {}", fmt_rate(min_of(r.samples), r.unit), fmt_rate(max_of(r.samples), r.unit)),
                     std::to_string(r.samples.size()),
                     r.roofline_samples.empty() ? "" : fmt::format("{:.0f}%", 100 * median_of(r.roofline_samples)),
                     r.read_bandwidth_gb_s > 0 ? fmt::format("{:.1f}", r.read_bandwidth_gb_s) : ""});
  page.heading("Measurements");
  page.table({"source", "model", "backend", "threads", "test", "mean ± sd", "min .. max", "reps", "roofline", "GB/s"}, table);
  return page;
}

std::vector<Delta> compare_to_baseline(const std::vector<Measurement>& baseline, const std::vector<Measurement>& current,
                                       double max_regression) {
  std::vector<Delta> out;
  for (const auto& b : baseline) {
    Delta d;
    d.key = b.key();
    d.test = b.test;
    d.threads = b.threads;
    const auto c = std::find_if(current.begin(), current.end(),
                                [&](const Measurement& m) { return m.test == b.test && m.threads == b.threads; });
    if (c == current.end()) {
      d.verdict = Delta::Verdict::missing;
      out.push_back(d);
      continue;
    }
    // Decode measured against the read bandwidth on both sides: compare the roofline fractions, which the
    // machine's bandwidth swings (x2 on shared hosts) do not move.
    d.by_roofline = !b.roofline_samples.empty() && !c->roofline_samples.empty();
    const auto [mb, eb] = mean_and_sem(d.by_roofline ? b.roofline_samples : b.samples);
    const auto [mc, ec] = mean_and_sem(d.by_roofline ? c->roofline_samples : c->samples);
    d.baseline = mb;
    d.current = mc;
    d.change = mc / mb - 1;
    d.noise = 2 * std::sqrt((eb / mb) * (eb / mb) + (ec / mc) * (ec / mc));
    if (d.change < -max_regression)
      d.verdict = -d.change > d.noise ? Delta::Verdict::regression : Delta::Verdict::within_noise;
    else if (d.change > max_regression && d.change > d.noise)
      d.verdict = Delta::Verdict::faster;
    out.push_back(d);
  }
  return out;
}

bool print_deltas(const std::vector<Delta>& deltas, double max_regression, std::FILE* out) {
  int regressions = 0;
  fmt::print(out, "\n| test | baseline | current | change | noise (2 SE) | verdict |\n|---|---:|---:|---:|---:|---|\n");
  for (const auto& d : deltas) {
    const char* verdict = "";
    switch (d.verdict) {
      case Delta::Verdict::ok: verdict = "ok"; break;
      case Delta::Verdict::faster: verdict = "faster"; break;
      case Delta::Verdict::within_noise: verdict = "slower, but within the noise of the repetitions"; break;
      case Delta::Verdict::regression: verdict = "REGRESSION"; ++regressions; break;
      case Delta::Verdict::missing: verdict = "not measured in this run"; break;
    }
    if (d.verdict == Delta::Verdict::missing) {
      fmt::print(out, "| {} | | | | | {} |\n", d.key, verdict);
      continue;
    }
    auto val = [&](double v) { return d.by_roofline ? fmt::format("{:.1f}% roofline", 100 * v) : report::tick_label(v); };
    fmt::print(out, "| {} | {} | {} | {:+.1f}% | ±{:.1f}% | {} |\n", d.key, val(d.baseline), val(d.current), 100 * d.change,
               100 * d.noise, verdict);
  }
  fmt::print(out, "\n{}: {} of {} tests slower than -{:.1f}% beyond the noise\n", regressions ? "FAILED" : "passed", regressions,
             deltas.size(), 100 * max_regression);
  return regressions > 0;
}

double parse_fraction(const std::string& text, const std::string& flag) {
  std::string t = text;
  const bool percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  size_t used = 0;
  double v = NAN;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
  }
  BITNET_CHECK(used == t.size() && std::isfinite(v) && v >= 0, "[report] {} '{}': expected a percentage such as 5% (or 0.05)",
               flag, text);
  return percent || v > 1 ? v / 100 : v;
}

}  // namespace bitnet::cli
