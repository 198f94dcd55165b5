#pragma once
// Internal: an ONNX ModelProto parsed with protobuf (Debian libonnx-dev's generated classes) and checked the
// way every other model file here is: a size limit, dims and byte counts that agree, external data only beside
// the file and inside it. What the importer needs is exposed as plain structs; protobuf stays in the .cpp.
#include <bitnet/memory.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace onnx {
class ModelProto;
}

namespace bitnet::onnx_io {

// TensorProto.DataType values this project reads (the rest are refused by name).
enum OnnxType : int32_t {
  kFloat = 1, kUint8 = 2, kInt8 = 3, kUint16 = 4, kInt16 = 5, kInt32 = 6, kInt64 = 7, kString = 8, kBool = 9,
  kFloat16 = 10, kDouble = 11, kUint32 = 12, kUint64 = 13, kBfloat16 = 16,
};
std::string onnx_type_name(int32_t type);  // "FLOAT16", or "type 42"
size_t onnx_type_size(int32_t type);       // 0 for types without a fixed size

struct OnnxLimits {
  uint64_t max_file_bytes = (1ull << 31) - 1;  // protobuf cannot parse more; bigger weights go in external data
  int64_t max_nodes = 1 << 20;
  int64_t max_initializers = 1 << 20;
  int64_t max_dims = 8;
  int recursion_limit = 64;
};

struct OnnxTensor {
  std::string name;
  int32_t type = 0;
  std::vector<int64_t> dims;
  int64_t elements = 0;
  std::span<const std::byte> data;  // little-endian, elements * onnx_type_size(type) bytes
};

struct OnnxNode {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;
};

class OnnxFile {
 public:
  // Reads `path` (and its external data files, named relative to its directory). Throws bitnet::Error naming
  // the file and the field.
  static OnnxFile open(const std::string& path, const OnnxLimits& limits = {});
  // Bytes in memory (fuzzing, tests); external data is refused. `name` is used in messages.
  static OnnxFile from_bytes(std::span<const std::byte> bytes, std::string name, const OnnxLimits& limits = {});
  ~OnnxFile();
  OnnxFile(OnnxFile&&) noexcept;
  OnnxFile& operator=(OnnxFile&&) noexcept;

  const std::string& path() const { return path_; }
  int64_t ir_version() const { return ir_version_; }
  int64_t opset() const { return opset_; }  // of the default domain, 0 when not imported
  const std::string& producer() const { return producer_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<OnnxTensor>& initializers() const { return initializers_; }
  const OnnxTensor* find(std::string_view name) const;
  const std::vector<OnnxNode>& nodes() const { return nodes_; }
  const std::vector<std::string>& graph_inputs() const { return inputs_; }
  const std::vector<std::string>& graph_outputs() const { return outputs_; }

 private:
  OnnxFile() = default;
  void parse(std::span<const std::byte> bytes, const OnnxLimits& limits, bool allow_external);
  std::string path_;
  std::string dir_;
  std::unique_ptr<onnx::ModelProto> proto_;               // owns raw_data the spans point into
  std::vector<std::shared_ptr<MappedFile>> mappings_;     // the file itself and external data files
  std::vector<std::vector<std::byte>> converted_;         // tensors stored in typed fields, as bytes
  int64_t ir_version_ = 0, opset_ = 0;
  std::string producer_;
  std::map<std::string, std::string> metadata_;
  std::vector<OnnxTensor> initializers_;
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<OnnxNode> nodes_;
  std::vector<std::string> inputs_, outputs_;
};

}  // namespace bitnet::onnx_io
