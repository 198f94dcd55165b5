// ONNX export and import (bitnet/onnx.h): GGUF -> ONNX -> GGUF gives every tensor back byte for byte (each
// ternary type, tied and untied heads, the llama architecture's permuted q/k rows, a rope_freqs tensor and
// metadata of every kind), the engine computes the same logits from the ONNX file as from the GGUF, and bad
// bytes are refused with the file's name. ONNX Runtime's side of the story is tests/onnx (pytest).
#include <bitnet/engine.h>
#include <bitnet/error.h>
#include <bitnet/model.h>
#include <bitnet/model_files.h>
#include <bitnet/onnx.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "onnx/base64.h"
#include "onnx/onnx_file.h"

#include <onnx/onnx_pb.h>

namespace bitnet {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("bitnet_onnx_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& n) const { return (path / n).string(); }
};

std::vector<std::byte> tensor_bytes(const GgufFile& f, const GgufTensorInfo& t) {
  const auto d = f.tensor_data(t);
  return {d.begin(), d.end()};
}

// Every tensor (name, type, dims, bytes) and every metadata key of `a` is in `b` the same, and nothing more,
// except general.file_type (which a conversion writes for its output type).
void expect_same_gguf(const std::string& pa, const std::string& pb) {
  const GgufFile a = GgufFile::open(pa), b = GgufFile::open(pb);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const GgufTensorInfo* u = b.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(t.type, u->type) << t.name;
    EXPECT_EQ(t.dims, u->dims) << t.name;
    EXPECT_TRUE(tensor_bytes(a, t) == tensor_bytes(b, *u)) << t.name << " differs";
  }
  for (const auto& [k, v] : a.metadata()) {
    if (k == "general.file_type" || k == "general.alignment") continue;
    const GgufValue* w = b.find(k);
    ASSERT_NE(w, nullptr) << k;
    EXPECT_TRUE(v == *w) << k;
  }
}

std::vector<std::pair<std::string, GgufValue>> extra_metadata() {
  return {{"general.quantization_version", GgufValue::u32(2)},
          {"tokenizer.ggml.model", GgufValue::string("gpt2")},
          {"bitnet.test.floats", GgufValue::scalar_array<float>(GgufValueType::f32, std::vector<float>{1.5f, -2.0f})},
          {"bitnet.test.flag", GgufValue::boolean(true)}};
}

void round_trip(const TransformerConfig& c, GgmlType type, bool untied, const std::string& name) {
  TempDir dir(name);
  Model m = Model::random(c, 7);
  m.description = name;
  const std::string gguf = dir.file("in.gguf"), onnx = dir.file("m.onnx"), back = dir.file("back.gguf");
  if (untied) {
    // An untied head: the same model written with an output.weight of its own.
    std::vector<LayerWeights> layers(m.layers().begin(), m.layers().end());
    Tensor head = Tensor::empty({c.vocab, c.hidden}, DType::f32);
    for (int64_t i = 0; i < c.vocab * c.hidden; ++i) static_cast<float*>(head.data())[i] = 0.01f * static_cast<float>(i % 97) - 0.4f;
    m = Model::from_weights(c, m.embedding(), std::move(layers), m.output_norm(), head);
  }
  m.save_gguf(gguf, type, extra_metadata());
  const OnnxExportSummary s = export_onnx(gguf, onnx);
  EXPECT_GT(s.nodes, 100);
  EXPECT_EQ(s.external_bytes, 0u);
  EXPECT_EQ(onnx_source_ternary_type(onnx), type);
  ConvertOptions o;
  o.ternary_type = type;
  convert_model(onnx, back, o);
  expect_same_gguf(gguf, back);
}

TEST(Onnx, RoundTripIsByteExactForEveryTernaryType) {
  ASSERT_TRUE(onnx_built());
  TransformerConfig c = TransformerConfig::tiny(300);
  c.layers = 2;
  round_trip(c, GgmlType::i2_s, false, "i2s");
  round_trip(c, GgmlType::tq2_0, false, "tq2");
  round_trip(c, GgmlType::tq1_0, true, "tq1_untied");
}

TEST(Onnx, RoundTripKeepsLlamaRowOrderAndRopeFactors) {
  TransformerConfig c = TransformerConfig::tiny(260);
  c.layers = 1;
  c.arch = "llama";
  c.activation = FfnActivation::silu;
  c.sub_norms = false;
  c.rope_theta = 500000.0f;
  c.rope_scaling.type = RopeType::llama3;
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.original_context = 256;
  round_trip(c, GgmlType::tq2_0, true, "llama3");
  round_trip(c, GgmlType::i2_s, false, "llama3_i2s");  // an I2_S \"llama\" file is told from TQ1_0 by its file type
}

TEST(Onnx, EngineRunsTheOnnxFileAsTheGguf) {
  TempDir dir("engine");
  TransformerConfig c = TransformerConfig::tiny(300);
  c.layers = 2;
  const Model m = Model::random(c, 3);
  m.save_gguf(dir.file("m.gguf"), GgmlType::i2_s);
  export_onnx(dir.file("m.gguf"), dir.file("m.onnx"));
  const Model a = Model::load(dir.file("m.gguf")), b = Model::load(dir.file("m.onnx"));
  Engine ea(a, 64), eb(b, 64);
  const std::vector<int32_t> tokens = {1, 5, 299, 0, 42, 42, 7};
  const float* la = ea.eval(0, tokens, 0);
  const float* lb = eb.eval(0, tokens, 0);
  EXPECT_EQ(std::memcmp(la, lb, static_cast<size_t>(c.vocab) * 4), 0);
}

TEST(Onnx, ExternalDataRoundTripsAndStaysBesideTheFile) {
  TempDir dir("external");
  TransformerConfig c = TransformerConfig::tiny(300);
  c.layers = 1;
  Model::random(c, 5).save_gguf(dir.file("m.gguf"), GgmlType::tq2_0);
  OnnxExportOptions o;
  o.external_data = OnnxExportOptions::ExternalData::always;
  const OnnxExportSummary s = export_onnx(dir.file("m.gguf"), dir.file("m.onnx"), o);
  EXPECT_EQ(s.external_path, dir.file("m.onnx.data"));
  EXPECT_GT(s.external_bytes, s.onnx_bytes);
  ConvertOptions co;
  co.ternary_type = GgmlType::tq2_0;
  convert_model(dir.file("m.onnx"), dir.file("back.gguf"), co);
  expect_same_gguf(dir.file("m.gguf"), dir.file("back.gguf"));
  // The side file cut short: refused naming it, not read past its end.
  fs::resize_file(dir.file("m.onnx.data"), fs::file_size(dir.file("m.onnx.data")) / 2);
  try {
    convert_model(dir.file("m.onnx"), dir.file("bad.gguf"), co);
    FAIL() << "a truncated external data file was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.onnx.data"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("bad.gguf")));
}

TEST(Onnx, BadBytesAreRefusedNamingTheFile) {
  TempDir dir("bad");
  TransformerConfig c = TransformerConfig::tiny(300);
  c.layers = 1;
  Model::random(c, 5).save_gguf(dir.file("m.gguf"), GgmlType::i2_s);
  export_onnx(dir.file("m.gguf"), dir.file("m.onnx"));
  std::ifstream in(dir.file("m.onnx"), std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Every cut of the file either parses (a prefix can be a valid message) or throws naming it; never crashes.
  for (const size_t cut : {size_t{0}, size_t{1}, size_t{17}, bytes.size() / 3, bytes.size() - 1}) {
    const std::string p = dir.file("cut.onnx");
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
    try {
      ConvertOptions o;
      convert_model(p, dir.file("cut.gguf"), o);
      ADD_FAILURE() << "a file cut at " << cut << " converted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.onnx"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(onnx_io::OnnxFile::from_bytes({}, "empty.onnx"), Error);
}

// Initializers whose dims claim more than their data holds (found by fuzz_onnx: an empty float_data reached
// memcpy with a null source) are refused before any buffer of the claimed size exists, and a size that would
// wrap 64 bits (2^61 doubles with no raw_data) is not taken for an empty tensor.
TEST(Onnx, InitializerDimsPastTheirDataAreRefused) {
  auto parse = [](const std::function<void(onnx::TensorProto&)>& fill) {
    onnx::ModelProto m;
    m.set_ir_version(8);
    onnx::TensorProto& t = *m.mutable_graph()->add_initializer();
    t.set_name("w");
    fill(t);
    const std::string bytes = m.SerializeAsString();
    try {
      onnx_io::OnnxFile::from_bytes({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "dims.onnx");
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  const std::string wrapped = parse([](onnx::TensorProto& t) {
    t.set_data_type(onnx::TensorProto::DOUBLE);
    t.add_dims(int64_t{1} << 61);
    t.set_raw_data("");
  });
  EXPECT_NE(wrapped.find("too large"), std::string::npos) << wrapped;
  const std::string huge = parse([](onnx::TensorProto& t) {
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_dims(int64_t{1} << 40);
    t.add_float_data(1.0f);
  });
  EXPECT_NE(huge.find("float_data holds 1 values"), std::string::npos) << huge;
  const std::string empty = parse([](onnx::TensorProto& t) {
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_dims(0);
  });
  EXPECT_EQ(empty.find("float_data"), std::string::npos) << empty;  // zero elements, zero values: fine
}

TEST(Onnx, Base64RoundTrips) {
  for (size_t n : {0, 1, 2, 3, 4, 5, 255}) {
    std::vector<std::byte> b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(i * 37 + 11);
    const auto back = onnx_io::base64_decode(onnx_io::base64_encode(b));
    ASSERT_TRUE(back.has_value());
    EXPECT_TRUE(*back == b) << n;
  }
  EXPECT_EQ(onnx_io::base64_encode(std::as_bytes(std::span("foob", 4))), "Zm9vYg==");
  EXPECT_FALSE(onnx_io::base64_decode("Zm9v=mFy").has_value());
  EXPECT_FALSE(onnx_io::base64_decode("Zm9").has_value());
}

}  // namespace
}  // namespace bitnet
