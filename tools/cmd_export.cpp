// `bitnet export RUN|CHECKPOINT -o model.gguf [--hf DIR]`: a trained model as the GGUF `bitnet run` executes
// (ternary projections, f16 embedding, the run's tokenizer) and optionally as an HF-style directory.
#include <bitnet/export.h>
#include <bitnet/train.h>
#include <bitnet/train_run.h>

#include <cstdio>
#include <filesystem>

#include "commands.h"

namespace bitnet::cli {

void add_export_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("export", "Write a trained model (run dir or checkpoint) as GGUF and/or HF safetensors");
  auto source = std::make_shared<std::string>();
  auto config = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto hf_dir = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>("i2_s");
  auto name = std::make_shared<std::string>();
  cmd->add_option("source", *source, "A training run's output dir or one of its checkpoints (.safetensors)")->required();
  cmd->add_option("-c,--config", *config, "The run's JSON config (default: run.json beside the checkpoint)");
  cmd->add_option("-o,--output", *output, "The GGUF to write")->required();
  cmd->add_option("--hf", *hf_dir, "Also write an HF-style dir: model.safetensors (packed ternary), config.json, tokenizer.json");
  cmd->add_option("-t,--type", *type, "Ternary layout: i2_s (any shape), tq2_0 or tq1_0 (in_features % 256 == 0)")
      ->check(CLI::IsMember({"i2_s", "tq2_0", "tq1_0"}))
      ->capture_default_str();
  cmd->add_option("--name", *name, "general.name (default: the output file's stem)");
  cmd->callback([&selected, source, config, output, hf_dir, type, name] {
    selected = [source, config, output, hf_dir, type, name]() {
      const train::RunConfig rc = train::find_run_config(*source, *config);
      const std::string ckpt = train::find_checkpoint(*source);
      int64_t step = -1;
      nn::CausalLM lm(rc.model, rc.quant);
      lm.load_state_dict(train::load_checkpoint_weights(ckpt, &step));
      lm.eval();
      train::ExportOptions o;
      o.ternary_type = *type == "i2_s" ? GgmlType::i2_s : *type == "tq2_0" ? GgmlType::tq2_0 : GgmlType::tq1_0;
      o.tokenizer_path = rc.tokenizer_path;
      o.name = *name;
      const Model m = train::export_gguf(lm, *output, o);
      std::printf("bitnet export: %s (%s) -> %s: %lld parameters, %s ternary, %s\n", ckpt.c_str(),
                  step >= 0 ? fmt::format("step {}", step).c_str() : "final", output->c_str(),
                  static_cast<long long>(m.parameter_count()), type->c_str(),
                  rc.tokenizer_path.empty() ? "no tokenizer" : ("tokenizer " + rc.tokenizer_path).c_str());
      if (!hf_dir->empty()) {
        train::export_hf_dir(*output, *hf_dir, rc.tokenizer_path);
        std::printf("bitnet export: %s/{model.safetensors, config.json%s}\n", hf_dir->c_str(),
                    rc.tokenizer_path.empty() ? "" : ", tokenizer.json");
      }
      return 0;
    };
  });
}

}  // namespace bitnet::cli
