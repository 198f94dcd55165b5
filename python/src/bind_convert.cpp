// bitnet.convert_model: the streaming model converter (model_files.h) that `bitnet convert` runs: an HF directory
// (config.json + safetensors) or a GGUF file to GGUF with a chosen ternary type, or GGUF to safetensors; and
// bitnet.onnx.export, the ONNX exporter (`bitnet export --onnx`).
#include <bitnet/export.h>
#include <bitnet/model_files.h>
#include <bitnet/onnx.h>
#include <bitnet/version.h>

#include "bindings.h"

namespace bitnet::python {

namespace py = pybind11;

void bind_convert(py::module_& m) {
  m.def(
      "convert_model",
      [](const std::string& input, const std::string& output, const std::string& ternary_type, bool quantize,
         const std::string& float_type) {
        ConvertOptions o;
        o.ternary_type = parse_ggml_type(ternary_type);
        o.quantize = quantize;
        if (float_type == "keep")
          o.float_type = std::nullopt;
        else
          o.float_type = parse_ggml_type(float_type);
        ConvertSummary s;
        {
          py::gil_scoped_release nogil;
          s = convert_model(input, output, o);
        }
        py::dict d;
        d["tensors"] = s.tensors;
        d["ternary_tensors"] = s.ternary_tensors;
        d["quantized_tensors"] = s.quantized_tensors;
        d["output_bytes"] = s.output_bytes;
        py::list notes;
        for (const std::string& n : s.notes) notes.append(n);
        d["notes"] = notes;
        return d;
      },
      py::arg("input"), py::arg("output"), py::arg("ternary_type") = "tq2_0", py::arg("quantize") = false,
      py::arg("float_type") = "f16",
      "As `bitnet convert`: input an HF dir or .gguf; output .gguf (ternary_type tq2_0 | tq1_0 | i2_s | f16 | f32) "
      "or .safetensors. quantize: absmean-ternarize latent (float) projection weights. float_type: embedding / "
      "lm_head type for HF input (f16, bf16, f32 or keep).");
  m.def(
      "export_onnx",
      [](const std::string& source, const std::string& output, const std::string& external_data,
         const std::string& run_config) {
        OnnxExportOptions o;
        if (external_data == "auto") o.external_data = OnnxExportOptions::ExternalData::automatic;
        else if (external_data == "always") o.external_data = OnnxExportOptions::ExternalData::always;
        else if (external_data == "never") o.external_data = OnnxExportOptions::ExternalData::never;
        else fail("[onnx] external_data must be 'auto', 'always' or 'never', got '{}'", external_data);
        o.producer_version = kVersion;
        OnnxExportSummary s;
        {
          py::gil_scoped_release nogil;
          s = train::export_onnx_from(source, output, o, run_config);
        }
        py::dict d;
        d["path"] = output;
        d["opset"] = kOnnxOpset;
        d["nodes"] = s.nodes;
        d["initializers"] = s.initializers;
        d["onnx_bytes"] = s.onnx_bytes;
        d["external_data"] = s.external_path.empty() ? py::object(py::none()) : py::object(py::str(s.external_path));
        d["external_bytes"] = s.external_bytes;
        d["ternary_weights"] = s.ternary_weights;
        return d;
      },
      py::arg("source"), py::arg("output"), py::arg("external_data") = "auto", py::arg("run_config") = "",
      "As `bitnet export SOURCE --onnx OUTPUT`.");
  m.def("onnx_built", &onnx_built, "Whether this build reads and writes ONNX (libonnx-dev found when it was built).");
}

}  // namespace bitnet::python
