// `bitnet bench`: prompt processing (ppN) and text generation (tgN) throughput, printed as llama-bench does
// (markdown, csv, json or jsonl), plus the weight bytes each generated token reads and the bandwidth that is.
#include <bitnet/bandwidth.h>
#include <bitnet/cpu.h>
#include <bitnet/cuda.h>
#include <bitnet/engine.h>
#include <bitnet/model.h>
#include <bitnet/thread_pool.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>

#include "bench_report.h"
#include "commands.h"
#include "progress.h"

namespace bitnet::cli {

namespace {

struct BenchOptions {
  std::string model;
  HfSource hf;  // -hf: the model from the Hugging Face Hub instead of -m
  std::string random;  // "2b4t": a random model of that shape
  std::vector<int> prompt = {512};
  std::vector<int> gen = {128};
  std::vector<int> depth = {0};  // llama-bench's -d: tokens already in the KV cache before each test
  std::vector<std::string> prompt_gen;  // -pg "pp,tg": prompt then generation, timed together (llama-bench)
  std::vector<int> threads;  // -t 1,2: every test at each count (thread scaling); empty: the default
  int reps = 5;
  std::string output = "md";
  std::string head = "f16", packing = "auto";
  KvCacheTypes kv_cache;  // -ctk / -ctv
  int batch = 512;
  bool batch_given = false;
  int ubatch = 0;
  bool roofline = true;
  int gpu_layers = -1;
  std::string device = "cpu";
  bool quantize = false;
  std::string report;                 // --report FILE.html (besides the -o output)
  std::string baseline;               // --baseline OLD.json: the regression gate
  std::string max_regression = "5%";
  int confirm = 2;                    // re-measurements of a test that looks regressed before it counts
};

struct Result {
  std::string test;
  int n_prompt = 0, n_gen = 0, depth = 0;
  int threads;
  double mean, stddev;  // tokens per second
  std::vector<double> samples;
  // Generation runs with the roofline: the read bandwidth measured before and after each repetition, and each
  // repetition's roofline fraction against the mean of its two neighbouring probes.
  std::vector<double> bandwidths, rooflines;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// `probe` (generation tests only, may be null): the bandwidth is measured around every repetition, since on a
// shared machine it moves from minute to minute and a single probe after the tests can miss the conditions
// the tests ran in by a factor of two.
// `depth` (llama-bench's -d): that many tokens are evaluated into the cache first, untimed, and the test runs after
// them; a decode token then also reads the depth's K and V (`kv_bytes_per_position` each), which the roofline counts.
Result run_test(Engine& engine, int n_prompt, int n_gen, int depth, int reps, std::mt19937& rng,
                const ReadBandwidthProbe* probe, double weight_bytes, double kv_bytes_per_position) {
  const int64_t vocab = engine.model().config().vocab;
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> tokens(static_cast<size_t>(std::max(n_prompt, 1)));
  std::vector<int32_t> context(static_cast<size_t>(depth));
  // The bytes one decode token reads: the weights, and K and V of every position before it (on average, half-way
  // through the test).
  const double bytes_per_token = weight_bytes + kv_bytes_per_position * (depth + 0.5 * n_gen);
  Result r;
  r.depth = depth;
  r.threads = default_pool().size();
  r.n_prompt = n_prompt;
  r.n_gen = n_gen;
  r.test = n_prompt > 0 && n_gen > 0 ? fmt::format("pp{}+tg{}", n_prompt, n_gen)
           : n_prompt > 0            ? fmt::format("pp{}", n_prompt)
                                     : fmt::format("tg{}", n_gen);
  if (depth > 0) r.test += fmt::format(" @ d{}", depth);  // llama-bench's name for a test at a depth
  constexpr int kProbePasses = 3;
  for (int rep = -1; rep < reps; ++rep) {  // rep -1 warms up (page faults, caches), not counted
    for (auto& t : tokens) t = tok(rng);
    for (auto& t : context) t = tok(rng);
    if (depth > 0) engine.eval(0, context, 0);
    if (probe != nullptr && rep >= 0 && r.bandwidths.empty()) r.bandwidths.push_back(probe->measure(default_pool(), kProbePasses));
    const auto t0 = std::chrono::steady_clock::now();
    if (n_prompt > 0) engine.eval(0, tokens, depth);
    for (int i = 0; i < n_gen; ++i) engine.eval(0, std::span<const int32_t>(&tokens[0], 1), depth + n_prompt + i);
    const double s = seconds_since(t0);
    if (rep >= 0) r.samples.push_back((n_prompt + n_gen) / s);
    if (probe != nullptr && rep >= 0) {
      r.bandwidths.push_back(probe->measure(default_pool(), kProbePasses));
      const double bw = 0.5 * (r.bandwidths[r.bandwidths.size() - 2] + r.bandwidths.back());
      r.rooflines.push_back(bytes_per_token * r.samples.back() / bw);
    }
  }
  double sum = 0, sq = 0;
  for (double v : r.samples) sum += v;
  r.mean = sum / static_cast<double>(r.samples.size());
  for (double v : r.samples) sq += (v - r.mean) * (v - r.mean);
  r.stddev = r.samples.size() > 1 ? std::sqrt(sq / static_cast<double>(r.samples.size() - 1)) : 0.0;
  return r;
}

// The process's peak resident set (VmHWM), in bytes; 0 where /proc does not say.
double peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;  // "VmHWM:  123 kB"
  return 0;
}

std::string human_bytes(double b) {
  return b >= (1ull << 30) ? fmt::format("{:.2f} GiB", b / (1ull << 30)) : fmt::format("{:.2f} MiB", b / (1 << 20));
}

// -pg "pp,tg" values (llama-bench: exactly two integers; "0,0" is skipped there and here).
std::vector<std::pair<int, int>> parse_prompt_gen(const std::vector<std::string>& values) {
  std::vector<std::pair<int, int>> out;
  for (const auto& v : values) {
    const size_t comma = v.find(',');
    int p = -1, g = -1;
    size_t used_p = 0, used_g = 0;
    try {
      if (comma != std::string::npos) {
        p = std::stoi(v.substr(0, comma), &used_p);
        g = std::stoi(v.substr(comma + 1), &used_g);
      }
    } catch (const std::exception&) {
      p = -1;
    }
    BITNET_CHECK(comma != std::string::npos && used_p == comma && used_g == v.size() - comma - 1 && p >= 0 &&
                     g >= 0 && p <= (1 << 20) && g <= (1 << 20),
                 "[bench] -pg '{}': expected two token counts PROMPT,GEN (e.g. -pg 512,128)", v);
    out.emplace_back(p, g);
  }
  return out;
}

int run_bench(const BenchOptions& o) {
  BITNET_CHECK(o.output != "html" || o.report.empty(), "[bench] -o html and --report both write the report; give one");
  // The thread counts to measure: -t's list, or the default pool's size.
  std::vector<int> thread_counts = o.threads;
  if (thread_counts.empty()) thread_counts.push_back(default_pool().size());
  set_default_thread_count(thread_counts.front());
  const HeadType head = parse_head_type(o.head);
  std::vector<std::string> notes;
  BITNET_CHECK(o.random.empty() || (o.model.empty() && o.hf.repo.empty()),
               "[bench] --random {} and a model (-m/-hf) both given; give one", o.random);
  const std::string model_path = o.random.empty() ? model_from_flags(o.model, o.hf, "bench") : "";
  BITNET_CHECK(!model_path.empty() || o.random == "2b4t", "[bench] give a model (-m FILE.gguf, -hf ORG/NAME) or --random 2b4t");
  const Model model = [&] {
    if (!model_path.empty())
      return Model::load(model_path, load_options_with_progress(head, o.quantize, o.packing, std::make_shared<Progress>("load", "layers")), &notes);
    Progress bar("random 2b4t", "layers");
    return Model::random(TransformerConfig::bitnet_2b4t(), 1, head, [&](int64_t d, int64_t t) { bar.update(d, t); },
                         parse_packing_choice(o.packing).value_or(TernaryPacking::two_bit));
  }();
  print_load_notes(notes);
  const std::vector<std::pair<int, int>> pgs = parse_prompt_gen(o.prompt_gen);
  int max_prompt = *std::max_element(o.prompt.begin(), o.prompt.end());
  const int max_gen = *std::max_element(o.gen.begin(), o.gen.end());
  int max_pg = 0;
  for (const auto& [p, g] : pgs) max_prompt = std::max(max_prompt, p), max_pg = std::max(max_pg, p + g);
  const int max_depth = *std::max_element(o.depth.begin(), o.depth.end());
  const TransformerConfig& cfg = model.config();
  // K and V of one position in every layer, in the cache's types: what a decode token reads per position of context.
  const auto kv_bytes_per_position =
      static_cast<double>(cfg.layers * (kv_cache_row_bytes(o.kv_cache.k, cfg.kv_heads, cfg.head_dim) +
                                        kv_cache_row_bytes(o.kv_cache.v, cfg.kv_heads, cfg.head_dim)));
  const int batch = effective_batch(o.batch, o.batch_given, o.ubatch);
  const bool gpu = o.device == "cuda" || o.gpu_layers > 0;
  std::mt19937 rng(1234);
  const double weight_bytes = static_cast<double>(model.ternary_bytes() + model.head_bytes());
  // The roofline: the bytes a token reads against this machine's read bandwidth, measured around each
  // generation run (the CPU's bandwidth: no roofline column for a GPU run; cuda_kernel_bench measures the GPU's).
  // The probe's buffer is resident from its creation on, so the peak RSS is the load's peak or the later peak
  // less the probe.
  double rss_before_probe = peak_rss_bytes();
  const bool has_gen = std::any_of(o.gen.begin(), o.gen.end(), [](int g) { return g > 0; });
  std::unique_ptr<ReadBandwidthProbe> probe;
  std::vector<Result> results;
  std::string backend;
  std::unique_ptr<Engine> engine;
  // An engine works with the pool it was made with: a new one whenever the thread count changes.
  auto engine_for = [&](int threads) -> Engine& {
    if (!engine || default_pool().size() != threads) {
      engine.reset();
      set_default_thread_count(threads);
      engine = std::make_unique<Engine>(model, max_depth + std::max({max_prompt, max_gen, max_pg, 1}), 1,
                                        std::max(1, std::min(batch, std::max({max_prompt, max_depth, 1}))), nullptr,
                                        o.kv_cache);
      if (gpu) cuda::offload(*engine, o.gpu_layers);
    }
    if (backend.empty())
      backend = engine->backend() != nullptr ? engine->backend()->name() : fmt::format("CPU {}", isa_name(preferred_isa()));
    if (!probe && o.roofline && engine->backend() == nullptr && has_gen) {
      rss_before_probe = peak_rss_bytes();
      probe = std::make_unique<ReadBandwidthProbe>();
    }
    return *engine;
  };
  // Decode-only tests are measured against the read bandwidth (the roofline).
  auto measure = [&](int threads, int p, int g, int d) {
    Engine& e = engine_for(threads);
    return run_test(e, p, g, d, o.reps, rng, p == 0 ? probe.get() : nullptr, weight_bytes, kv_bytes_per_position);
  };
  for (int threads : thread_counts)
    for (int d : o.depth) {
      for (int p : o.prompt)
        if (p > 0) results.push_back(measure(threads, p, 0, d));
      for (int g : o.gen)
        if (g > 0) results.push_back(measure(threads, 0, g, d));
      for (const auto& [p, g] : pgs)
        if (p > 0 || g > 0) results.push_back(measure(threads, p, g, d));
    }
  const double rss = std::max(rss_before_probe, peak_rss_bytes() - (probe ? static_cast<double>(probe->bytes()) : 0.0));
  std::vector<double> all_bandwidths;
  for (const auto& r : results) all_bandwidths.insert(all_bandwidths.end(), r.bandwidths.begin(), r.bandwidths.end());
  const double bandwidth = median(all_bandwidths);
  std::string name = model.description + (head == HeadType::f16 ? "" : fmt::format(" ({} head)", head_type_name(head)));
  name += packing_suffix(model);
  if (o.kv_cache.k != KvCacheType::f16 || o.kv_cache.v != KvCacheType::f16)
    name += fmt::format(" (KV cache {}/{})", kv_cache_type_name(o.kv_cache.k), kv_cache_type_name(o.kv_cache.v));
  const double size = static_cast<double>(model.ternary_bytes() + model.head_bytes()) +
                      (model.head_f16().storage() == model.embedding().storage() ? 0.0 : model.embedding().nbytes());
  const double params = static_cast<double>(model.parameter_count());
  MachineInfo machine = this_machine();
  machine.threads = thread_counts.back();
  machine.read_bandwidth_gb_s = bandwidth / 1e9;
  auto row_json = [&](const Result& r) {
    nlohmann::json j = {{"model", name}, {"size", size}, {"params", params}, {"backend", backend}, {"threads", r.threads},
                        {"test", r.test}, {"n_depth", r.depth}, {"avg_ts", r.mean}, {"stddev_ts", r.stddev},
                        {"samples_ts", r.samples}, {"type_k", kv_cache_type_name(o.kv_cache.k)},
                        {"type_v", kv_cache_type_name(o.kv_cache.v)}};
    if (r.test.rfind("tg", 0) == 0) {
      j["weight_bytes_per_token"] = weight_bytes;
      // At a depth a token also reads the cache (the roofline counts it): on average half-way through the test.
      if (r.depth > 0) j["kv_bytes_per_token"] = kv_bytes_per_position * (r.depth + 0.5 * r.n_gen);
      j["weight_gb_per_s"] = weight_bytes * r.mean / 1e9;
      if (!r.rooflines.empty()) {
        j["read_bandwidth_gb_per_s"] = median(r.bandwidths) / 1e9;
        j["roofline_fraction"] = median(r.rooflines);
        j["samples_read_bandwidth_gb_per_s"] = r.bandwidths;
        for (auto& b : j["samples_read_bandwidth_gb_per_s"]) b = b.get<double>() / 1e9;
        j["samples_roofline_fraction"] = r.rooflines;
      }
    }
    j["peak_rss_bytes"] = rss;
    j["cpu_info"] = machine.cpu;  // as llama-bench names them
    j["build_commit"] = machine.commit;
    return j;
  };
  // Reports and the gate read the rows in the shape `bitnet report` reads files in.
  auto measurements = [&] {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : results) rows.push_back(row_json(r));
    return measurements_from_json(rows, "this run", "bitnet bench");
  };
  // The gate: a test that looks slower than the baseline beyond the threshold and the noise is measured again
  // (--confirm times) and its best measurement kept, since a shared host's speed moves more between minutes than
  // within one test's repetitions. A real slowdown stays slow every time.
  std::vector<Delta> deltas;
  double threshold = 0;
  if (!o.baseline.empty()) {
    threshold = parse_fraction(o.max_regression, "--max-regression");
    const std::vector<Measurement> base = read_measurements(o.baseline);
    for (int attempt = 0;; ++attempt) {
      deltas = compare_to_baseline(base, measurements(), threshold);
      std::vector<size_t> again;
      for (const auto& d : deltas)
        if (d.verdict == Delta::Verdict::regression)
          for (size_t i = 0; i < results.size(); ++i)
            if (results[i].test == d.test && results[i].threads == d.threads) again.push_back(i);
      if (again.empty() || attempt >= o.confirm) break;
      std::fprintf(stderr, "bench: %zu test(s) slower than the baseline; measuring them again (%d of %d)\n",
                   again.size(), attempt + 1, o.confirm);
      for (size_t i : again) {
        Result r = measure(results[i].threads, results[i].n_prompt, results[i].n_gen, results[i].depth);
        const bool by_roofline = !r.rooflines.empty() && !results[i].rooflines.empty();
        if (by_roofline ? median(r.rooflines) > median(results[i].rooflines) : r.mean > results[i].mean) results[i] = r;
      }
    }
  }
  const std::vector<Measurement> measured = measurements();
  const std::string title = fmt::format("bitnet bench: {}", name);
  if (o.output == "html") {
    fmt::print("{}", benchmark_page(measured, title, machine).html());
  } else if (o.output == "json") {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& r : results) all.push_back(row_json(r));
    fmt::print("{}\n", all.dump(2));
  } else if (o.output == "jsonl") {
    for (const auto& r : results) fmt::print("{}\n", row_json(r).dump());
  } else if (o.output == "csv") {
    fmt::print("model,size,params,backend,threads,test,avg_ts,stddev_ts,weight_bytes_per_token,roofline_fraction,peak_rss_bytes\n");
    for (const auto& r : results) {
      const bool tg = r.test.rfind("tg", 0) == 0;
      fmt::print("\"{}\",{:.0f},{:.0f},{},{},{},{:.2f},{:.2f},{:.0f},{:.3f},{:.0f}\n", name, size, params, backend, r.threads,
                 r.test, r.mean, r.stddev, tg ? weight_bytes : 0.0,
                 tg ? median(r.rooflines) : 0.0, rss);
    }
  } else {
    fmt::print("| model | size | params | backend | threads | test | t/s | weight B/token | GB/s | roofline |\n");
    fmt::print("| ----- | ---: | -----: | ------- | ------: | ---: | --: | -------------: | ---: | -------: |\n");
    for (const auto& r : results) {
      const bool tg = r.test.rfind("tg", 0) == 0;
      fmt::print("| {} | {} | {:.2f} B | {} | {} | {} | {:.2f} ± {:.2f} | {} | {} | {} |\n", name, human_bytes(size),
                 params / 1e9, backend, r.threads, r.test, r.mean, r.stddev, tg ? human_bytes(weight_bytes) : "",
                 tg ? fmt::format("{:.1f}", weight_bytes * r.mean / 1e9) : "",
                 tg && !r.rooflines.empty() ? fmt::format("{:.0f}%", 100.0 * median(r.rooflines)) : "");
    }
    fmt::print("\npeak RSS {}", human_bytes(rss));
    if (bandwidth > 0)
      fmt::print("; read bandwidth {:.1f} GB/s (median of {} probes around the generation runs, {} threads; "
                 "roofline: median over the runs, each against its own probes)",
                 bandwidth / 1e9, all_bandwidths.size(), thread_counts.back());
    fmt::print("\n");
  }
  if (!o.report.empty()) {
    benchmark_page(measured, title, machine).write(o.report);
    std::fprintf(stderr, "report: %s\n", o.report.c_str());
  }
  // The deltas go to stderr when stdout carries a machine-readable result.
  if (!o.baseline.empty() && print_deltas(deltas, threshold, o.output == "md" ? stdout : stderr)) return 3;
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("bench", "Measure prompt (ppN) and generation (tgN) throughput, like llama-bench");
  auto o = std::make_shared<BenchOptions>();
  cmd->add_option("-m,--model", o->model, "GGUF model file or Hugging Face checkpoint directory");
  cmd->add_flag("--quantize", o->quantize, kQuantizeHelp);
  cmd->add_option("--random", o->random, "Benchmark a random-weight model of this shape instead (2b4t)")
      ->check(CLI::IsMember({"2b4t"}));
  cmd->add_option("-p,--n-prompt", o->prompt, "Prompt lengths to test (0 skips)")->delimiter(',');
  cmd->add_option("-n,--n-gen", o->gen, "Generation lengths to test (0 skips)")->delimiter(',');
  cmd->add_option("-t,--threads", o->threads, "Threads; a list (-t 1,2) runs every test at each count (default: BITNET_THREADS or all CPUs)")
      ->delimiter(',')->check(CLI::Range(1, 1024));
  cmd->add_option("-r,--repetitions", o->reps, "Repetitions of each test")->check(CLI::Range(1, 1000));
  cmd->add_option("-o,--output", o->output, "Output format (html: the report with charts, to stdout)")
      ->check(CLI::IsMember({"md", "csv", "json", "jsonl", "html"}));
  cmd->add_option("--report", o->report, "Also write the HTML report (charts: t/s with the spread, roofline, thread scaling) to this file");
  auto* baseline = cmd->add_option("--baseline", o->baseline, "Compare with an earlier `bitnet bench -o json` (or llama-bench's) test by test; exit 3 on a regression");
  // Without a baseline these would do nothing: CLI11 refuses them, naming --baseline.
  cmd->add_option("--max-regression", o->max_regression, "With --baseline: the slowdown allowed beyond the noise")
      ->capture_default_str()->needs(baseline);
  cmd->add_option("--confirm", o->confirm, "With --baseline: measure a test that looks regressed again up to this many times, keeping its best")
      ->check(CLI::Range(0, 10))->capture_default_str()->needs(baseline);
  cmd->add_option("--head", o->head, kHeadTypeHelp)->check(CLI::IsMember(head_type_names()));
  add_packing_option(cmd, o->packing);
  cmd->add_flag("!--no-roofline", o->roofline, "Skip measuring the read bandwidth (the roofline column)");
  cmd->add_option("--prompt-gen", o->prompt_gen, "Prompt then generation timed together, test ppP+tgG (also -pg P,G; repeatable)")
      ->allow_extra_args(false);
  llama_alias(cmd, "-pg", "--prompt-gen");
  auto* b = cmd->add_option("-b,--batch-size", o->batch, "Tokens per forward pass during prompt processing")->check(CLI::Range(1, 4096));
  cmd->add_option("--ubatch-size", o->ubatch, "llama.cpp's physical batch (also -ub): a forward pass is min(-b, -ub) tokens (0: -b)")
      ->check(CLI::Range(0, 4096));
  llama_alias(cmd, "-ub", "--ubatch-size");
  cmd->add_option("--n-gpu-layers", o->gpu_layers, "Layers on the GPU (also -ngl): 0 or all of them (-1: all with --device cuda)");
  llama_alias(cmd, "-ngl", "--n-gpu-layers");
  add_device_option(cmd, o->device);
  add_gpu_placement_flags(cmd, &o->kv_cache, true);
  add_hf_flags(cmd, o->hf);
  // llama-bench's load and test switches, where bitnet has one way.
  add_choice_flag(cmd, "--mmap", "-mmp", {"1"},
                  "the model file is always memory-mapped (the embedding is used in place, the ternary weights are "
                  "repacked into memory)", true);
  add_choice_flag(cmd, "--load-mode", "-lm", {"mmap"}, "the model file is always memory-mapped", true);
  add_choice_flag(cmd, "--direct-io", "-dio", {"0"}, "direct I/O loading is not built", true);
  add_choice_flag(cmd, "--embeddings", "-embd", {"0"}, "bench measures generation, not embeddings", true);
  add_choice_flag(cmd, "--no-op-offload", "-nopo", {"0"}, "there is no per-op offload switch", true);
  cmd->add_option("-d,--n-depth", o->depth,
                  "Tokens already in the KV cache before each test (llama-bench's depth; a list: -d 0,4096); the test is "
                  "named ppN @ dD / tgN @ dD and the roofline counts the cache a decode token reads")
      ->delimiter(',')->check(CLI::Range(0, 1 << 20));
  cmd->callback([&selected, o, b] {
    o->batch_given = b->count() > 0;
    selected = [o] { return run_bench(*o); };
  });
}

}  // namespace bitnet::cli
