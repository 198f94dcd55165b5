// export_onnx_from (bitnet/export.h): every source the CLI takes goes through one GGUF, which export_onnx
// writes as ONNX. A training run is exported as the engine model it runs (I2_S, the run's tokenizer).
#include <bitnet/error.h>
#include <bitnet/export.h>
#include <bitnet/model_files.h>
#include <bitnet/train.h>
#include <bitnet/train_run.h>

#include "io/temp_gguf.h"

namespace bitnet::train {

OnnxExportSummary export_onnx_from(const std::string& source, const std::string& out_path,
                                   const OnnxExportOptions& options, const std::string& run_config) {
  std::optional<ModelPath> model;
  try {
    model = resolve_model_path(source);
  } catch (const Error&) {
    // Not a model file or checkpoint directory: a training run or one of its checkpoints (which say so if not).
  }
  BITNET_CHECK(!model || run_config.empty(), "[export] {}: -c/--config names a training run's config, but this "
               "source is a model file or directory, which carries its own", source);
  if (model && model->kind == ModelPath::Kind::gguf) return export_onnx(model->path, out_path, options);
  const TempGguf tmp;
  if (model) {
    if (model->kind == ModelPath::Kind::hf_dir && !load_model_config(model->path).is_bitnet_checkpoint())
      fail("[export] {}: config.json has no quantization_config: a full-precision checkpoint; convert it with "
           "`bitnet convert --quantize` first if BitNet arithmetic is what you want", source);
    convert_for_loading(*model, tmp.path, model->kind == ModelPath::Kind::hf_dir);
  } else {
    const RunConfig rc = find_run_config(source, run_config);
    nn::CausalLM lm(rc.model, rc.quant);
    lm.load_state_dict(load_checkpoint_weights(find_checkpoint(source)));
    lm.eval();
    ExportOptions o;
    o.ternary_type = GgmlType::i2_s;
    o.tokenizer_path = rc.tokenizer_path;
    export_gguf(lm, tmp.path, o);
  }
  return export_onnx(tmp.path, out_path, options);
}

}  // namespace bitnet::train
