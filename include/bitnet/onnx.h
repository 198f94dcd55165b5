#pragma once
// ONNX: a BitNet model as a standard ONNX graph (opset 17, default domain only) that computes the engine's
// W1.58A8 arithmetic, and ONNX files back into GGUF (ours, and torch.onnx exports of transformers'
// BitNetForCausalLM). See docs/onnx.md for the graph, its inputs and outputs and the file size.
#include <bitnet/gguf.h>

#include <cstdint>
#include <optional>
#include <string>

namespace bitnet {

// Whether this build reads and writes ONNX (Debian libonnx-dev + libprotobuf-dev found at configure time).
bool onnx_built();

inline constexpr int64_t kOnnxOpset = 17;
inline constexpr int64_t kOnnxIrVersion = 8;

struct OnnxExportOptions {
  // Initializers in a side file (OUT.data) instead of inside the protobuf, which cannot pass 2 GB:
  // automatic = when the weights would pass 1.9 GB.
  enum class ExternalData { automatic, always, never };
  ExternalData external_data = ExternalData::automatic;
  std::string producer_version;  // written as producer_version (the CLI passes its version)
};

struct OnnxExportSummary {
  int64_t nodes = 0;
  int64_t initializers = 0;
  uint64_t onnx_bytes = 0;        // the .onnx file
  uint64_t external_bytes = 0;    // the side file (0 when none)
  std::string external_path;      // the side file, empty when none
  uint64_t ternary_weights = 0;   // ternary weights stored (one int8 each)
};

// Writes the model in `gguf_path` (any GGUF the engine loads) as ONNX at `out_path`. The GGUF's metadata (the
// tokenizer among it) and any tensor the graph does not use travel inside the ONNX file, so that
// onnx_to_gguf gives the same tensors back byte for byte. Throws bitnet::Error naming what cannot be exported
// (dynamic RoPE scaling, per-row weight scales). The output is written under a temporary name and renamed.
OnnxExportSummary export_onnx(const std::string& gguf_path, const std::string& out_path,
                              const OnnxExportOptions& options = {});

// The ternary GGUF type an ONNX file written by export_onnx came from (its weights are stored as int8), or
// nullopt for any other ONNX file. Throws when the file cannot be read.
std::optional<GgmlType> onnx_source_ternary_type(const std::string& path);

}  // namespace bitnet
