// Reading an ONNX file: protobuf parses (with a byte and a recursion limit), then every initializer's dims,
// type and bytes are checked before anything points at them. External data must sit beside the model file
// (a relative name, no "..") and hold the bytes the dims promise.
#include "onnx/onnx_file.h"

#include <bitnet/error.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>

namespace bitnet::onnx_io {

namespace fs = std::filesystem;

std::string onnx_type_name(int32_t type) {
  switch (type) {
    case kFloat: return "FLOAT";
    case kUint8: return "UINT8";
    case kInt8: return "INT8";
    case kUint16: return "UINT16";
    case kInt16: return "INT16";
    case kInt32: return "INT32";
    case kInt64: return "INT64";
    case kString: return "STRING";
    case kBool: return "BOOL";
    case kFloat16: return "FLOAT16";
    case kDouble: return "DOUBLE";
    case kUint32: return "UINT32";
    case kUint64: return "UINT64";
    case kBfloat16: return "BFLOAT16";
    default: return fmt::format("type {}", type);
  }
}

size_t onnx_type_size(int32_t type) {
  switch (type) {
    case kUint8: case kInt8: case kBool: return 1;
    case kUint16: case kInt16: case kFloat16: case kBfloat16: return 2;
    case kFloat: case kInt32: case kUint32: return 4;
    case kInt64: case kDouble: case kUint64: return 8;
    default: return 0;
  }
}

OnnxFile::~OnnxFile() = default;
OnnxFile::OnnxFile(OnnxFile&&) noexcept = default;
OnnxFile& OnnxFile::operator=(OnnxFile&&) noexcept = default;

OnnxFile OnnxFile::open(const std::string& path, const OnnxLimits& limits) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("[onnx] '{}' is not a regular file", path);
  OnnxFile f;
  f.path_ = path;
  f.dir_ = fs::path(path).parent_path().string();
  auto map = MappedFile::open(path);
  if (map->size() > limits.max_file_bytes)
    fail("[onnx] {}: {} bytes is more than the {} a protobuf can hold; weights this large belong in external data",
         path, map->size(), limits.max_file_bytes);
  f.mappings_.push_back(map);
  f.parse({map->data(), map->size()}, limits, true);
  return f;
}

OnnxFile OnnxFile::from_bytes(std::span<const std::byte> bytes, std::string name, const OnnxLimits& limits) {
  OnnxFile f;
  f.path_ = std::move(name);
  if (bytes.size() > limits.max_file_bytes) fail("[onnx] {}: {} bytes is over the limit of {}", f.path_, bytes.size(), limits.max_file_bytes);
  f.parse(bytes, limits, false);
  return f;
}

const OnnxTensor* OnnxFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &initializers_[it->second];
}

namespace {

// elements = product of dims, refusing negative dims and products past 2^62.
int64_t element_count(const std::vector<int64_t>& dims, const std::string& what) {
  int64_t n = 1;
  for (const int64_t d : dims) {
    if (d < 0) fail("{}: dimension {} is negative", what, d);
    if (d != 0 && n > (int64_t{1} << 62) / d) fail("{}: dims {} overflow", what, dims);
    n *= d;
  }
  return n;
}

// A typed repeated field as little-endian bytes of `type`.
std::vector<std::byte> typed_bytes(const onnx::TensorProto& t, int32_t type, int64_t elements, const std::string& what) {
  const size_t es = onnx_type_size(type);
  std::vector<std::byte> out;
  // The count is checked before the buffer is sized: the repeated field, not the dims, bounds the allocation.
  auto expect = [&](int64_t have, const char* field) {
    if (have != elements) fail("{}: {} holds {} values; the dims need {}", what, field, have, elements);
    out.resize(static_cast<size_t>(elements) * es);
  };
  auto copy = [&](const void* src) {
    if (!out.empty()) std::memcpy(out.data(), src, out.size());  // an empty field's data() may be null
  };
  switch (type) {
    case kFloat:
      expect(t.float_data_size(), "float_data");
      copy(t.float_data().data());
      break;
    case kDouble:
      expect(t.double_data_size(), "double_data");
      copy(t.double_data().data());
      break;
    case kInt64:
      expect(t.int64_data_size(), "int64_data");
      copy(t.int64_data().data());
      break;
    case kUint32: case kUint64:
      expect(t.uint64_data_size(), "uint64_data");
      for (int64_t i = 0; i < elements; ++i) {
        const uint64_t v = t.uint64_data(static_cast<int>(i));
        std::memcpy(out.data() + i * static_cast<int64_t>(es), &v, es);  // little-endian: the low bytes
      }
      break;
    case kInt32: case kInt16: case kUint16: case kInt8: case kUint8: case kBool: case kFloat16: case kBfloat16:
      // int32_data carries every narrower type, one value (or its bit pattern) per entry.
      expect(t.int32_data_size(), "int32_data");
      for (int64_t i = 0; i < elements; ++i) {
        const int32_t v = t.int32_data(static_cast<int>(i));
        std::memcpy(out.data() + i * static_cast<int64_t>(es), &v, es);
      }
      break;
    default: fail("{}: data type {} is not read", what, onnx_type_name(type));
  }
  return out;
}

}  // namespace

void OnnxFile::parse(std::span<const std::byte> bytes, const OnnxLimits& limits, bool allow_external) {
  proto_ = std::make_unique<onnx::ModelProto>();
  google::protobuf::io::ArrayInputStream stream(bytes.data(), static_cast<int>(bytes.size()));
  google::protobuf::io::CodedInputStream coded(&stream);
  coded.SetTotalBytesLimit(static_cast<int>(std::min<uint64_t>(limits.max_file_bytes, (1ull << 31) - 1)));
  coded.SetRecursionLimit(limits.recursion_limit);
  if (!proto_->ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
    fail("[onnx] {}: not an ONNX model (the protobuf ModelProto does not parse)", path_);
  const onnx::ModelProto& m = *proto_;
  if (!m.has_graph()) fail("[onnx] {}: ModelProto.graph is missing", path_);
  ir_version_ = m.ir_version();
  producer_ = m.producer_name();
  for (const auto& op : m.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
  for (const auto& p : m.metadata_props())
    if (!metadata_.emplace(p.key(), p.value()).second) fail("[onnx] {}: metadata_props has '{}' twice", path_, p.key());

  const onnx::GraphProto& g = m.graph();
  if (g.sparse_initializer_size() > 0)
    fail("[onnx] {}: graph.sparse_initializer '{}' is not read", path_, g.sparse_initializer(0).values().name());
  if (g.node_size() > limits.max_nodes) fail("[onnx] {}: {} nodes is over the limit of {}", path_, g.node_size(), limits.max_nodes);
  if (g.initializer_size() > limits.max_initializers)
    fail("[onnx] {}: {} initializers is over the limit of {}", path_, g.initializer_size(), limits.max_initializers);
  for (const auto& v : g.input()) inputs_.push_back(v.name());
  for (const auto& v : g.output()) outputs_.push_back(v.name());
  nodes_.reserve(static_cast<size_t>(g.node_size()));
  for (const auto& n : g.node()) {
    OnnxNode node{n.name(), n.op_type(), n.domain(), {n.input().begin(), n.input().end()}, {n.output().begin(), n.output().end()}};
    nodes_.push_back(std::move(node));
  }

  std::map<std::string, std::shared_ptr<MappedFile>> external;
  initializers_.reserve(static_cast<size_t>(g.initializer_size()));
  for (int i = 0; i < g.initializer_size(); ++i) {
    const onnx::TensorProto& t = g.initializer(i);
    const std::string what = fmt::format("[onnx] {}: initializer '{}'", path_, t.name());
    if (t.name().empty()) fail("[onnx] {}: initializer #{} has no name", path_, i);
    if (t.dims_size() > limits.max_dims) fail("{}: {} dims is over the limit of {}", what, t.dims_size(), limits.max_dims);
    if (t.has_segment()) fail("{}: segmented tensors are not read", what);
    OnnxTensor out;
    out.name = t.name();
    out.type = t.data_type();
    out.dims.assign(t.dims().begin(), t.dims().end());
    out.elements = element_count(out.dims, what);
    const size_t es = onnx_type_size(out.type);
    if (es == 0) {
      // STRING or an unknown type: kept by name (an importer refuses it if it needs it), no bytes.
      if (!index_.emplace(out.name, initializers_.size()).second) fail("{} appears twice", what);
      initializers_.push_back(std::move(out));
      continue;
    }
    // element_count bounds the count by 2^62; times 8 bytes that could wrap, and a wrapped size would let a short
    // raw_data pass for a huge tensor.
    if (static_cast<uint64_t>(out.elements) > (uint64_t{1} << 62) / es)
      fail("{}: dims {} of {} are too large", what, out.dims, onnx_type_name(out.type));
    const auto need = static_cast<uint64_t>(out.elements) * es;
    if (t.data_location() == onnx::TensorProto::EXTERNAL) {
      std::string location;
      uint64_t offset = 0, length = 0;
      bool has_length = false;
      for (const auto& kv : t.external_data()) {
        auto number = [&](const std::string& v) {
          if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
            fail("{}: external_data {} = '{}' is not a non-negative integer", what, kv.key(), v);
          return std::stoull(v);
        };
        if (kv.key() == "location") location = kv.value();
        else if (kv.key() == "offset") offset = number(kv.value());
        else if (kv.key() == "length") length = number(kv.value()), has_length = true;
        else if (kv.key() != "checksum") fail("{}: external_data key '{}' is not known", what, kv.key());
      }
      if (!allow_external) fail("{}: external data ('{}') cannot be read from bytes in memory", what, location);
      const fs::path rel(location);
      bool escapes = location.empty() || rel.is_absolute();
      for (const auto& part : rel) escapes = escapes || part == "..";
      if (escapes)
        fail("{}: external_data location '{}' must be a file name relative to the model's directory, inside it", what,
             location);
      if (has_length && length != need) fail("{}: external_data length {} but the dims {} need {} bytes", what, length, out.dims, need);
      auto& file = external[location];
      if (!file) {
        const std::string full = (fs::path(dir_) / rel).string();
        std::error_code ec;
        if (!fs::is_regular_file(full, ec)) fail("{}: its external data file '{}' is missing or not a regular file", what, full);
        file = MappedFile::open(full);
        mappings_.push_back(file);
      }
      if (offset > file->size() || need > file->size() - offset)
        fail("{}: bytes {}..{} lie past the end of '{}' ({} bytes)", what, offset, offset + need, file->path(), file->size());
      out.data = {file->data() + offset, static_cast<size_t>(need)};
    } else if (t.has_raw_data()) {
      if (t.raw_data().size() != need)
        fail("{}: raw_data holds {} bytes; dims {} of {} need {}", what, t.raw_data().size(), out.dims,
             onnx_type_name(out.type), need);
      out.data = {reinterpret_cast<const std::byte*>(t.raw_data().data()), t.raw_data().size()};
    } else {
      converted_.push_back(typed_bytes(t, out.type, out.elements, what));
      out.data = converted_.back();
    }
    if (!index_.emplace(out.name, initializers_.size()).second) fail("{} appears twice", what);
    initializers_.push_back(std::move(out));
  }
}

}  // namespace bitnet::onnx_io
