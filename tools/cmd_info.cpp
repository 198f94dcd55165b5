// `bitnet info`: version, CPU features, the kernel variant each family uses, thread count.
#include <bitnet/cpu.h>
#include <bitnet/kernels.h>
#include <bitnet/thread_pool.h>
#include <bitnet/cuda.h>
#include <bitnet/distributed.h>
#include <bitnet/onnx.h>
#include <bitnet/version.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "commands.h"

namespace bitnet::cli {

namespace {
std::vector<std::string> isa_names(const std::vector<Isa>& isas) {
  std::vector<std::string> out;
  for (Isa i : isas) out.emplace_back(isa_name(i));
  return out;
}
}  // namespace

void add_info_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("info", "Show the version, CPU features, kernel variants and thread count");
  auto threads = std::make_shared<int>(0);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("-t,--threads", *threads, "Threads to use (default: BITNET_THREADS or all CPUs)")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([&selected, threads, json] { selected = [threads, json]() {
    if (*threads > 0) set_default_thread_count(*threads);
    const CpuFeatures& cpu = cpu_features();
    const int n_threads = default_pool().size();
    const auto families = kernel_families();
    const char* forced = std::getenv("BITNET_ISA");
    if (*json) {
      nlohmann::json j;
      j["version"] = kVersion;
      j["cpu"] = {{"brand", cpu.brand}, {"logical_cpus", cpu.logical_cpus},
                  {"features", cpu_feature_list(cpu)}};
      j["isa"] = {{"preferred", isa_name(preferred_isa())}, {"forced_by_env", forced ? forced : ""}};
      for (const auto& f : families)
        j["kernels"][f.name] = {{"selected", isa_name(f.selected)}, {"runnable", isa_names(f.runnable)}};
      j["threads"] = n_threads;
      j["built_with"] = {{"mpi", train::mpi_built()}, {"onnx", onnx_built()}, {"cuda", cuda::built()}};
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print("bitnet {}\n", kVersion);
    fmt::print("cpu:      {} ({} logical CPUs)\n", cpu.brand.empty() ? "unknown" : cpu.brand, cpu.logical_cpus);
    fmt::print("features: {}\n", cpu_feature_list(cpu));
    fmt::print("isa:      {}{}\n", isa_name(preferred_isa()),
               forced && *forced ? fmt::format(" (forced by BITNET_ISA={})", forced) : std::string(" (best supported)"));
    fmt::print("kernels:\n");
    for (const auto& f : families)
      fmt::print("  {:<12} {:<7} (runnable here: {})\n", f.name, isa_name(f.selected),
                 fmt::join(isa_names(f.runnable), ", "));
    fmt::print("threads:  {}\n", n_threads);
    fmt::print("built with: MPI {}, ONNX {}, CUDA {}\n", train::mpi_built() ? "yes" : "no", onnx_built() ? "yes" : "no",
               cuda::built() ? "yes" : "no");
    return 0;
  }; });
}

}  // namespace bitnet::cli
