// The exporter's graph builder (see onnx_graph.h).
#include "onnx/onnx_graph.h"

#include <bitnet/error.h>

#include <cstring>

#include "onnx/onnx_file.h"

namespace bitnet::onnx_io {

GraphBuilder::GraphBuilder(onnx::GraphProto* graph, std::FILE* external, std::string external_name)
    : graph_(graph), external_(external), external_name_(std::move(external_name)) {}

std::string GraphBuilder::node(const std::string& op, std::vector<std::string> inputs, std::vector<Attr> attrs,
                               std::vector<std::string> outputs) {
  onnx::NodeProto* n = graph_->add_node();
  const std::string name = fmt::format("{}/{}_{}", scope_, op, counter_++);
  n->set_name(name);
  n->set_op_type(op);
  for (auto& in : inputs) n->add_input(std::move(in));
  if (outputs.empty()) outputs.push_back(name + "_output_0");
  for (const auto& out : outputs) n->add_output(out);
  for (const Attr& a : attrs) {
    onnx::AttributeProto* p = n->add_attribute();
    p->set_name(a.name);
    switch (a.kind) {
      case Attr::kInt:
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(a.i);
        break;
      case Attr::kInts:
        p->set_type(onnx::AttributeProto::INTS);
        for (const int64_t v : a.ints) p->add_ints(v);
        break;
      case Attr::kFloat:
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(a.f);
        break;
    }
  }
  return outputs.front();
}

std::string GraphBuilder::constant(const std::string& key, int32_t type, std::vector<int64_t> dims, const void* data,
                                   size_t bytes) {
  for (const auto& [k, name] : constants_)
    if (k == key) return name;
  const std::string name = fmt::format("const.{}", constants_.size());
  initializer(name, type, std::move(dims), {static_cast<const std::byte*>(data), bytes});
  constants_.emplace_back(key, name);
  return name;
}

std::string GraphBuilder::const_i64(std::vector<int64_t> values, bool scalar) {
  std::string key = scalar ? "i64s" : "i64";
  for (const int64_t v : values) key += fmt::format(",{}", v);
  std::vector<int64_t> dims;
  if (!scalar) dims.push_back(static_cast<int64_t>(values.size()));
  return constant(key, kInt64, dims, values.data(), values.size() * 8);
}

std::string GraphBuilder::const_f32(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return constant(fmt::format("f32,{:08x}", bits), kFloat, {}, &value, 4);
}

std::string GraphBuilder::const_f64(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  return constant(fmt::format("f64,{:016x}", bits), kDouble, {}, &value, 8);
}

void GraphBuilder::initializer(const std::string& name, int32_t type, std::vector<int64_t> dims,
                               std::span<const std::byte> bytes, const std::string& doc) {
  onnx::TensorProto* t = graph_->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  if (!doc.empty()) t->set_doc_string(doc);
  for (const int64_t d : dims) t->add_dims(d);
  if (external_ == nullptr || bytes.size() < kExternalMinBytes) {
    t->set_raw_data(bytes.data(), bytes.size());
    return;
  }
  // Page-aligned offsets: ONNX Runtime maps external tensors whose offset is a multiple of the page size.
  const uint64_t pad = (kExternalAlign - external_offset_ % kExternalAlign) % kExternalAlign;
  static const char zeros[kExternalAlign] = {};
  if ((pad > 0 && std::fwrite(zeros, 1, pad, external_) != pad) ||
      std::fwrite(bytes.data(), 1, bytes.size(), external_) != bytes.size())
    fail("[onnx] cannot write '{}' to the external data file '{}' (disk full?)", name, external_name_);
  external_offset_ += pad;
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, std::string v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(std::move(v));
  };
  add("location", external_name_);
  add("offset", std::to_string(external_offset_));
  add("length", std::to_string(bytes.size()));
  external_offset_ += bytes.size();
}

}  // namespace bitnet::onnx_io
