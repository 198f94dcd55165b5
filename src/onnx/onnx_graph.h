#pragma once
// Internal: a small builder over onnx::GraphProto for the exporter: nodes with unique names, constants as
// initializers, and large initializers either inline (raw_data) or streamed to an external data file.
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace bitnet::onnx_io {

struct Attr {
  std::string name;
  enum Kind { kInt, kInts, kFloat } kind;
  int64_t i = 0;
  std::vector<int64_t> ints;
  float f = 0.0f;
  static Attr integer(std::string n, int64_t v) { return {std::move(n), kInt, v, {}, 0.0f}; }
  static Attr integers(std::string n, std::vector<int64_t> v) { return {std::move(n), kInts, 0, std::move(v), 0.0f}; }
  static Attr real(std::string n, float v) { return {std::move(n), kFloat, 0, {}, v}; }
};

class GraphBuilder {
 public:
  // `external`: where initializers of at least kExternalMinBytes go (null: all inline); `external_name` is
  // the location recorded for them (relative to the .onnx file).
  GraphBuilder(onnx::GraphProto* graph, std::FILE* external, std::string external_name);

  // Adds a node; returns its first output, named `<scope>/<op>_<n>` unless `outputs` are given.
  std::string node(const std::string& op, std::vector<std::string> inputs, std::vector<Attr> attrs = {},
                   std::vector<std::string> outputs = {});
  // Scopes name the nodes ("/layers.3/attn"), as torch.onnx does, so a profile reads by layer.
  void set_scope(std::string scope) { scope_ = std::move(scope); }

  // Constants (deduplicated by value) and weights.
  std::string const_i64(std::vector<int64_t> values, bool scalar = false);
  std::string const_f32(float value);
  std::string const_f64(double value);
  void initializer(const std::string& name, int32_t type, std::vector<int64_t> dims, std::span<const std::byte> bytes,
                   const std::string& doc = "");

  int64_t nodes() const { return graph_->node_size(); }
  uint64_t external_bytes() const { return external_offset_; }

  static constexpr uint64_t kExternalMinBytes = 1024;
  static constexpr uint64_t kExternalAlign = 4096;  // page-aligned, so a runtime can map each tensor

 private:
  onnx::GraphProto* graph_;
  std::FILE* external_;
  std::string external_name_;
  uint64_t external_offset_ = 0;
  std::string scope_;
  int64_t counter_ = 0;
  std::vector<std::pair<std::string, std::string>> constants_;  // (key, name)
  std::string constant(const std::string& key, int32_t type, std::vector<int64_t> dims, const void* data, size_t bytes);
};

}  // namespace bitnet::onnx_io
