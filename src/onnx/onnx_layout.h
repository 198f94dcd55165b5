#pragma once
// Internal: what export_onnx writes and the importer expects back. Weights keep their GGUF names; a ternary
// projection is an INT8 initializer [in, out] (MatMulInteger's B, so no Transpose runs per call) with a FLOAT
// scalar `<name>_scale`; the GGUF's metadata and the tensors the graph does not use (rope_freqs.weight) travel
// base64-encoded as a tensor-less-or-small GGUF in metadata_props.
#include <string>
#include <string_view>

namespace bitnet::onnx_io {

inline constexpr std::string_view kFormatKey = "bitnet.format";
inline constexpr std::string_view kFormatValue = "bitnet-onnx/1";
inline constexpr std::string_view kGgufKey = "bitnet.gguf";             // base64 GGUF: metadata + unused tensors
inline constexpr std::string_view kTernaryTypeKey = "bitnet.ternary_type";  // "i2_s", "tq2_0", "tq1_0"
inline constexpr std::string_view kScaleSuffix = "_scale";
// Tables the graph gathers RoPE rotations from, by position: [context, head_dim / 2].
inline constexpr std::string_view kRopeCos = "rope.cos";
inline constexpr std::string_view kRopeSin = "rope.sin";

// GGUF tensors that are weights of the graph (the rest of a GGUF goes into kGgufKey).
bool is_graph_weight(std::string_view gguf_name);

}  // namespace bitnet::onnx_io
