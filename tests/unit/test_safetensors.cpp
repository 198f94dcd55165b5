// safetensors reader/writer against the PyPI `safetensors` package both ways, sharded checkpoints.
#include <bitnet/dtype.h>
#include <bitnet/safetensors.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "io_test_util.h"
#include "numpy_oracle.h"

namespace bitnet {
namespace {

using test::TempDir;

template <class T>
std::span<const std::byte> as_span(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

struct Sample {
  std::vector<uint16_t> bf16 = {f32_to_bf16(1.0f), f32_to_bf16(-2.5f), f32_to_bf16(0.125f), 0, f32_to_bf16(3.0f),
                                f32_to_bf16(1e-3f)};
  std::vector<float> f32 = {1.5f, -2.0f, 0.0f};
  std::vector<uint16_t> f16 = {f32_to_f16(0.5f), f32_to_f16(-1.0f)};
  std::vector<uint8_t> u8 = {0, 85, 170, 255};
  std::vector<int8_t> i8 = {-128, 0, 127};
};

void write_sample(const std::string& path, const Sample& s) {
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_tensor("model.layers.0.w", StDType::bf16, {2, 3});
  w.add_tensor("f32", StDType::f32, {3});
  w.add_tensor("f16", StDType::f16, {1, 2});
  w.add_tensor("packed", StDType::u8, {1, 4});
  w.add_tensor("i8", StDType::i8, {3});
  w.add_tensor("scale", StDType::f32, {});
  w.add_tensor("empty", StDType::f32, {0, 5});
  w.write_header(path);
  w.write(as_span(s.bf16));
  w.write(as_span(s.f32));
  w.write(as_span(s.f16));
  w.write(as_span(s.u8));
  w.write(as_span(s.i8));
  const std::vector<float> scale = {2.0f};
  w.write(as_span(scale));
  w.write({});
  w.finish();
}

TEST(Safetensors, OwnRoundTrip) {
  TempDir dir;
  Sample s;
  write_sample(dir.file("a.safetensors"), s);
  const SafetensorsFile f = SafetensorsFile::open(dir.file("a.safetensors"));
  EXPECT_EQ(f.header_size() % 8, 0u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  ASSERT_EQ(f.tensors().size(), 7u);
  const auto& w = f.tensor("model.layers.0.w");
  EXPECT_EQ(w.dtype, StDType::bf16);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(f.data(w).data(), s.bf16.data(), 12), 0);
  EXPECT_EQ(f.tensor("scale").shape.size(), 0u);
  EXPECT_EQ(f.tensor("scale").numel(), 1);
  EXPECT_EQ(f.tensor("empty").nbytes(), 0u);
  EXPECT_EQ(std::memcmp(f.data(f.tensor("i8")).data(), s.i8.data(), 3), 0);
  EXPECT_THROW(f.tensor("nope"), Error);
}

TEST(Safetensors, OursReadBySafetensorsPackage) {
  BITNET_REQUIRE_ORACLE("safetensors");
  TempDir dir;
  Sample s;
  write_sample(dir.file("a.safetensors"), s);
  const auto out = test::run_model_oracle("st_read", test::read_file(dir.file("a.safetensors")));
  const auto j = nlohmann::json::parse(out.begin(), out.end());
  EXPECT_EQ(j["metadata"]["format"], "pt");
  const SafetensorsFile f = SafetensorsFile::open(dir.file("a.safetensors"));
  ASSERT_EQ(j["tensors"].size(), f.tensors().size());
  for (const auto& t : f.tensors()) {
    const auto& o = j["tensors"][t.name];
    EXPECT_EQ(o["dtype"], st_dtype_name(t.dtype)) << t.name;
    EXPECT_EQ(o["shape"].get<std::vector<int64_t>>(), t.shape) << t.name;
    const auto d = f.data(t);
    EXPECT_EQ(o["hex"], test::to_hex(d.data(), d.size())) << t.name;
  }
}

TEST(Safetensors, ReadsSafetensorsPackageFile) {
  BITNET_REQUIRE_ORACLE("safetensors");
  BITNET_REQUIRE_ORACLE("ml_dtypes");
  TempDir dir;
  test::write_file(dir.file("py.safetensors"), test::run_model_oracle("st_write", {}));
  const SafetensorsFile f = SafetensorsFile::open(dir.file("py.safetensors"));
  EXPECT_EQ(f.metadata().at("source"), "oracle");
  const auto& e = f.tensor("model.embed.weight");
  EXPECT_EQ(e.dtype, StDType::bf16);
  EXPECT_EQ(e.shape, (std::vector<int64_t>{3, 4}));
  for (int i = 0; i < 12; ++i) {
    uint16_t b;
    std::memcpy(&b, f.data(e).data() + 2 * i, 2);
    EXPECT_EQ(bf16_to_f32(b), i / 8.0f);
  }
  const auto& f16 = f.tensor("f16");
  uint16_t h;
  std::memcpy(&h, f.data(f16).data() + 4, 2);
  EXPECT_EQ(f16_to_f32(h), 65504.0f);
  const auto& u8 = f.tensor("u8");
  EXPECT_EQ(u8.shape, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(static_cast<int>(f.data(u8)[7]), 7);
  EXPECT_EQ(static_cast<int8_t>(f.data(f.tensor("i8"))[0]), -128);
  EXPECT_TRUE(f.tensor("scalar").shape.empty());
  EXPECT_EQ(f.tensor("empty").shape, (std::vector<int64_t>{0, 3}));
  float v;
  std::memcpy(&v, f.data(f.tensor("f32")).data() + 12, 4);
  EXPECT_EQ(v, 3.25f);
}

void write_shard(const std::string& path, const std::vector<std::string>& names) {
  SafetensorsWriter w;
  for (const auto& n : names) w.add_tensor(n, StDType::f32, {2});
  w.write_header(path);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::vector<float> v = {float(i), float(names[i].size())};
    w.write(as_span(v));
  }
  w.finish();
}

TEST(Safetensors, ShardedIndex) {
  TempDir dir;
  write_shard(dir.file("model-00001-of-00002.safetensors"), {"a", "b"});
  write_shard(dir.file("model-00002-of-00002.safetensors"), {"c"});
  auto write_index = [&](const std::string& map) {
    std::ofstream(dir.file("model.safetensors.index.json"))
        << R"({"metadata": {"total_size": 24}, "weight_map": )" << map << "}";
  };
  write_index(R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                  "c": "model-00002-of-00002.safetensors"})");
  const SafetensorsModel m = SafetensorsModel::open(dir.path().string());
  EXPECT_EQ(m.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(m.shards().size(), 2u);
  float v[2];
  std::memcpy(v, m.data(m.tensor("c")).data(), 8);
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_NE(m.tensor("c").file->path().find("00002"), std::string::npos);

  write_index(R"({"a": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"})");
  std::string msg = test::error_of([&] { SafetensorsModel::open(dir.path().string()); });
  EXPECT_NE(msg.find("'c'"), std::string::npos) << msg;
  write_index(R"({"a": "../etc/passwd"})");
  msg = test::error_of([&] { SafetensorsModel::open(dir.path().string()); });
  EXPECT_NE(msg.find("same directory"), std::string::npos) << msg;
  write_index(R"({"a": "missing.safetensors"})");
  msg = test::error_of([&] { SafetensorsModel::open(dir.path().string()); });
  EXPECT_NE(msg.find("missing.safetensors"), std::string::npos) << msg;
  write_shard(dir.file("dup.safetensors"), {"a"});
  write_index(R"({"a": "model-00001-of-00002.safetensors", "x": "dup.safetensors"})");
  msg = test::error_of([&] { SafetensorsModel::open(dir.path().string()); });
  EXPECT_NE(msg.find("two shards"), std::string::npos) << msg;
}

}  // namespace
}  // namespace bitnet
