// `bitnet export RUN|CHECKPOINT -o model.gguf [--hf DIR]`: a trained model as the GGUF `bitnet run` executes
// (ternary projections, f16 embedding, the run's tokenizer) and optionally as an HF-style directory.
// `bitnet export SOURCE --onnx OUT.onnx`: any model (GGUF, HF directory, run or checkpoint) as an ONNX graph
// computing the engine's arithmetic (bitnet/onnx.h).
#include <bitnet/error.h>
#include <bitnet/export.h>
#include <bitnet/model_files.h>
#include <bitnet/train.h>
#include <bitnet/train_run.h>
#include <bitnet/version.h>

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
  auto onnx_out = std::make_shared<std::string>();
  auto external = std::make_shared<std::string>("auto");
  cmd->add_option("source", *source,
                  "A training run's output dir or one of its checkpoints (.safetensors); with --onnx also a GGUF file "
                  "or a Hugging Face directory")->required();
  cmd->add_option("-c,--config", *config, "The run's JSON config (default: run.json beside the checkpoint)");
  cmd->add_option("-o,--output", *output, "The GGUF to write");
  cmd->add_option("--onnx", *onnx_out, "Write an ONNX graph (opset 17, standard operators) that ONNX Runtime runs");
  cmd->add_option("--onnx-external-data", *external,
                  "Weights in OUT.onnx.data beside the graph: auto (past 1.9 GB, protobuf's limit is 2), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_option("--hf", *hf_dir, "Also write an HF-style dir: model.safetensors (packed ternary), config.json, tokenizer.json");
  cmd->add_option("-t,--type", *type, "Ternary layout: i2_s (any shape), tq2_0 or tq1_0 (in_features % 256 == 0)")
      ->check(CLI::IsMember({"i2_s", "tq2_0", "tq1_0"}))
      ->capture_default_str();
  cmd->add_option("--name", *name, "general.name (default: the output file's stem)");
  cmd->callback([&selected, cmd, source, config, output, hf_dir, type, name, onnx_out, external] {
    if (output->empty() && onnx_out->empty()) throw CLI::ValidationError("export", "give -o OUT.gguf, --onnx OUT.onnx or both");
    if (!hf_dir->empty() && output->empty()) throw CLI::ValidationError("--hf", "--hf writes from the GGUF: give -o OUT.gguf too");
    if (output->empty() && (cmd->count("--type") > 0 || cmd->count("--name") > 0))
      throw CLI::ValidationError("export", "--type and --name apply to the GGUF output (-o)");
    if (onnx_out->empty() && cmd->count("--onnx-external-data") > 0)
      throw CLI::ValidationError("--onnx-external-data", "applies to --onnx only");
    selected = [source, config, output, hf_dir, type, name, onnx_out, external]() {
      if (!output->empty()) {
        // A model file or directory is already what -o would write: bitnet convert changes its layout.
        bool model_source = true;
        try {
          (void)resolve_model_path(*source);
        } catch (const Error&) {
          model_source = false;
        }
        if (model_source)
          fail("[export] {} is a model file or directory: -o, --hf, --type and --name export a training run (use "
               "bitnet convert for GGUF and safetensors layouts); --onnx alone takes it", *source);
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
      }
      if (!onnx_out->empty()) {
        OnnxExportOptions oo;
        oo.external_data = *external == "always"  ? OnnxExportOptions::ExternalData::always
                           : *external == "never" ? OnnxExportOptions::ExternalData::never
                                                  : OnnxExportOptions::ExternalData::automatic;
        oo.producer_version = kVersion;
        // With -o, the graph is made from the GGUF just written (the run is exported once).
        const OnnxExportSummary s = output->empty() ? train::export_onnx_from(*source, *onnx_out, oo, *config)
                                                    : export_onnx(*output, *onnx_out, oo);
        std::printf("bitnet export: %s -> %s: opset %lld, %lld nodes, %lld initializers, %.1f MiB%s\n",
                    (output->empty() ? *source : *output).c_str(), onnx_out->c_str(),
                    static_cast<long long>(kOnnxOpset), static_cast<long long>(s.nodes),
                    static_cast<long long>(s.initializers), static_cast<double>(s.onnx_bytes) / 1048576.0,
                    s.external_path.empty() ? ""
                        : fmt::format(" + {:.1f} MiB external data in {}", static_cast<double>(s.external_bytes) / 1048576.0,
                                      s.external_path).c_str());
      }
      return 0;
    };
  });
}

}  // namespace bitnet::cli
