// `bitnet convert IN -o OUT`: HF checkpoint directory or GGUF -> GGUF with a chosen ternary type, or
// GGUF -> HF safetensors (packed uint8 + weight_scale). Streams tensor by tensor.
#include <bitnet/model_files.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "commands.h"
#include "progress.h"

namespace bitnet::cli {


void add_convert_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("convert", "Convert HF safetensors or GGUF to GGUF (ternary type of choice), or GGUF to safetensors");
  struct Args {
    std::string input, output, type = "tq2_0", convention, float_type = "f16";
    bool quantize = false, quiet = false;
    uint64_t shard_mib = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("INPUT", a->input, "HF directory (config.json + safetensors), .gguf file or .onnx file")->required();
  cmd->add_option("-o,--output", a->output, "Output .gguf or .safetensors")->required();
  cmd->add_option("-t,--type", a->type, "Type for ternary weights: tq2_0 (default; for an ONNX file bitnet exported, the type it came from), tq1_0, i2_s, f16, f32")
      ->check(CLI::IsMember({"tq2_0", "tq1_0", "i2_s", "f16", "f32"}, CLI::ignore_case));
  cmd->add_option("--float-type", a->float_type,
                  "HF input: type of the embedding / lm_head: f16 (default, as bitnet.cpp), bf16, f32, keep (source precision)")
      ->check(CLI::IsMember({"f16", "bf16", "f32", "keep"}, CLI::ignore_case));
  cmd->add_flag("--quantize", a->quantize, "Ternarize non-ternary projection weights with absmean (otherwise refused)");
  cmd->add_option("--scale-convention", a->convention,
                  "How the HF weight_scale applies: multiply (= mean|W|) or divide (= 1/mean|W|); default from config.json")
      ->check(CLI::IsMember({"multiply", "divide"}));
  cmd->add_option("--shard-mib", a->shard_mib, "safetensors output: shards of at most this many MiB plus an index.json")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_flag("-q,--quiet", a->quiet, "No progress bar or summary");
  cmd->callback([&selected, cmd, a] {
    const bool type_given = cmd->count("--type") > 0;
    selected = [a, type_given]() {
      ConvertOptions o;
      o.ternary_type = parse_ggml_type(a->type);
      // An ONNX file bitnet exported goes back to the ternary type it came from, byte for byte, unless told.
      o.ternary_type_from_source = !type_given;
      o.quantize = a->quantize;
      if (a->float_type == "keep") o.float_type.reset();
      else o.float_type = parse_ggml_type(a->float_type);
      o.max_shard_bytes = a->shard_mib << 20;
      if (!a->convention.empty())
        o.scale_convention = a->convention == "multiply" ? ScaleConvention::multiply : ScaleConvention::divide;
      auto bar = std::make_shared<Progress>("convert", "tensors");
      if (!a->quiet) o.progress = [bar](size_t d, size_t t, const std::string& n) { bar->update(static_cast<int64_t>(d), static_cast<int64_t>(t), n); };
      const auto t0 = std::chrono::steady_clock::now();
      const ConvertSummary s = convert_model(a->input, a->output, o);
      if (!a->quiet) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        fmt::print("wrote {}: {} tensors ({} ternary, {} quantized with absmean), {:.1f} MiB in {:.1f} s\n", a->output,
                   s.tensors, s.ternary_tensors, s.quantized_tensors, s.output_bytes / 1048576.0, secs);
        for (const auto& n : s.notes) fmt::print("note: {}\n", n);
      }
      return 0;
    };
  });
}

}  // namespace bitnet::cli
