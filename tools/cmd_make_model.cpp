// `bitnet make-model`: a GGUF file with random ternary weights at a real model's shape, for benchmarks and
// tests (`bitnet bench -m` on it measures the engine without the real weights).
#include <bitnet/gguf.h>
#include <bitnet/model.h>
#include <fmt/format.h>

#include <chrono>

#include "commands.h"

namespace bitnet::cli {

void add_make_model_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("make-model", "Write a random-weight model of a real model's shape as GGUF");
  struct Options {
    std::string arch = "bitnet-b1.58-2b4t";
    std::string output;
    std::string type = "i2_s";
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--arch", o->arch, "Shape to copy")->check(CLI::IsMember({"bitnet-b1.58-2b4t"}));
  cmd->add_option("output", o->output, "Output GGUF file")->required();
  cmd->add_option("-t,--type", o->type, "Ternary type of the projections")->check(CLI::IsMember({"i2_s", "tq2_0", "tq1_0"}));
  cmd->add_option("--seed", o->seed, "Random seed");
  cmd->callback([&selected, o] {
    selected = [o] {
      const auto t0 = std::chrono::steady_clock::now();
      Model m = Model::random(TransformerConfig::bitnet_2b4t(), o->seed);
      m.description = "random " + o->arch;
      m.save_gguf(o->output, parse_ggml_type(o->type));
      fmt::print("wrote {} ({} layers, {:.2f} B parameters, {}) in {:.1f} s\n", o->output, m.config().layers,
                 m.parameter_count() / 1e9, o->type,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      return 0;
    };
  });
}

}  // namespace bitnet::cli
