#pragma once
// Internal: the pieces of the streaming converter (model_convert.cpp) that other readers reuse: the ONNX
// importer feeds a torch.onnx export's weights through the same Hugging Face rules (names, latent weights,
// packed uint8 + weight_scale, RoPE keys, tokenizer) and writes its own export's tensors back with the same
// writer.
#include <bitnet/gguf.h>
#include <bitnet/model_config.h>
#include <bitnet/model_files.h>
#include <bitnet/ternary_formats.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitnet::convert_detail {

struct Item {
  std::string name;           // output name
  std::vector<int64_t> dims;  // GGUF order
  GgmlType type;
  std::function<std::vector<uint8_t>()> produce;
  std::vector<std::span<const std::byte>> inputs;  // mapped input bytes, released once written
  bool passthrough = false;  // written straight from inputs[0], without a copy
};

// One tensor of a Hugging Face-named checkpoint: dtype as safetensors spells it ("F32", "F16", "BF16", "U8").
struct SourceTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
};

// Tensors by Hugging Face name (model.safetensors, or the initializers of a torch.onnx export).
class CheckpointTensors {
 public:
  virtual ~CheckpointTensors() = default;
  virtual const std::vector<std::string>& names() const = 0;  // sorted
  virtual const SourceTensor* find(std::string_view name) const = 0;
  const SourceTensor& at(std::string_view name) const;  // throws naming the tensor when absent
};

std::vector<float> to_f32(std::span<const std::byte> data, std::string_view dtype, const std::string& what);
std::vector<uint8_t> from_f32(const std::vector<float>& v, GgmlType type);
std::vector<uint8_t> emit_ternary(const TernaryTensor& t, GgmlType type);
uint32_t file_type_for(GgmlType t);
void write_gguf(const std::string& output, std::vector<std::pair<std::string, GgufValue>> kv, std::vector<Item>& items,
                const ConvertOptions& o, ConvertSummary& s);

// A Hugging Face checkpoint (config.json + tensors) -> GGUF at `output`; `dir` holds config.json and the
// tokenizer files; `input` names the source in messages.
void convert_checkpoint(const std::string& input, const std::string& dir, const ModelConfig& cfg,
                        const CheckpointTensors& tensors, const std::string& output, const ConvertOptions& o,
                        ConvertSummary& s);

// An .onnx file -> GGUF at `output` (onnx/onnx_import.cpp; a build without ONNX refuses).
void convert_onnx(const std::string& input, const std::string& output, const ConvertOptions& o, ConvertSummary& s);

}  // namespace bitnet::convert_detail
