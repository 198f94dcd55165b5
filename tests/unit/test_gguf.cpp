// GGUF reader/writer: our files read by gguf-py's GGUFReader, gguf-py's GGUFWriter files read by us, real
// tokenizer GGUFs, I2_S detection, zero-copy tensor data.
#include <bitnet/dtype.h>
#include <bitnet/gguf.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "io_test_util.h"
#include "numpy_oracle.h"

namespace bitnet {
namespace {

using test::TempDir;

template <class T>
std::span<const std::byte> as_span(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

struct Written {
  std::vector<float> a;           // F32 [2, 3] (torch) = dims {3, 2}
  std::vector<uint16_t> h;        // F16 [8]
  std::vector<uint16_t> b;        // BF16 [4]
  std::vector<uint8_t> q8;        // Q8_0 [64] = 2 blocks of 34 bytes
  std::vector<uint8_t> tq2, tq1;  // [1, 256]
};

// Writes a file with every scalar value type, arrays, and F32/F16/BF16/Q8_0/TQ2_0/TQ1_0 tensors.
Written write_sample(const std::string& path, uint32_t alignment = 32) {
  Written w;
  for (int i = 0; i < 6; ++i) w.a.push_back(static_cast<float>(i) - 2.5f);
  for (int i = 0; i < 8; ++i) w.h.push_back(f32_to_f16(static_cast<float>(i) / 4));
  for (int i = 0; i < 4; ++i) w.b.push_back(f32_to_bf16(static_cast<float>(i) * 1.5f));
  for (int i = 0; i < 68; ++i) w.q8.push_back(static_cast<uint8_t>(i * 7));
  for (int i = 0; i < 66; ++i) w.tq2.push_back(static_cast<uint8_t>(i * 5 + 1));
  for (int i = 0; i < 54; ++i) w.tq1.push_back(static_cast<uint8_t>(i * 3 + 2));
  GgufWriter g(alignment);
  g.set("general.architecture", GgufValue::string("llama"));
  g.set("t.u8", GgufValue::u8(200));
  g.set("t.i8", GgufValue::i8(-100));
  g.set("t.u16", GgufValue::u16(60000));
  g.set("t.i16", GgufValue::i16(-30000));
  g.set("t.u32", GgufValue::u32(4000000000u));
  g.set("t.i32", GgufValue::i32(-7));
  g.set("t.f32", GgufValue::f32(0.25f));
  g.set("t.bool", GgufValue::boolean(true));
  g.set("t.str", GgufValue::string("h\xc3\xa9llo"));
  g.set("t.u64", GgufValue::u64((1ull << 40) + 3));
  g.set("t.i64", GgufValue::i64(-(int64_t(1) << 40)));
  g.set("t.f64", GgufValue::f64(1.0 / 3.0));
  const std::vector<int32_t> ints = {1, -2, 3};
  g.set("t.arr_i32", GgufValue::scalar_array<int32_t>(GgufValueType::i32, ints));
  g.set("t.arr_str", GgufValue::string_array({"a", "bc", ""}));
  g.add_tensor("a", {3, 2}, GgmlType::f32);
  g.add_tensor("h", {8}, GgmlType::f16);
  g.add_tensor("b", {4}, GgmlType::bf16);
  g.add_tensor("q8", {64}, GgmlType::q8_0);
  g.add_tensor("tq2", {256, 1}, GgmlType::tq2_0);
  g.add_tensor("tq1", {256}, GgmlType::tq1_0);
  g.write_header(path);
  g.write_tensor(as_span(w.a));
  g.write_tensor(as_span(w.h));
  g.write_tensor(as_span(w.b));
  g.write_tensor(as_span(w.q8));
  g.write_tensor(as_span(w.tq2));
  g.write_tensor(as_span(w.tq1));
  g.finish();
  return w;
}

TEST(Gguf, OwnRoundTripKeepsValuesTensorsAndAlignment) {
  TempDir dir;
  for (uint32_t alignment : {32u, 64u, 8u}) {
    const std::string path = dir.file(fmt::format("s{}.gguf", alignment));
    const Written w = write_sample(path, alignment);
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.get_int("t.u8"), 200);
    EXPECT_EQ(f.get_int("t.i8"), -100);
    EXPECT_EQ(f.get_int("t.u16"), 60000);
    EXPECT_EQ(f.get_int("t.i16"), -30000);
    EXPECT_EQ(f.get_int("t.u32"), 4000000000ll);
    EXPECT_EQ(f.get_int("t.i32"), -7);
    EXPECT_EQ(f.get_float("t.f32"), 0.25);
    EXPECT_EQ(f.at("t.bool").bits, 1u);
    EXPECT_EQ(f.get_string("t.str"), "h\xc3\xa9llo");
    EXPECT_EQ(f.get_int("t.u64"), (int64_t(1) << 40) + 3);
    EXPECT_EQ(f.get_int("t.i64"), -(int64_t(1) << 40));
    EXPECT_EQ(f.get_float("t.f64"), 1.0 / 3.0);
    const GgufValue& arr = f.at("t.arr_i32");
    ASSERT_EQ(arr.count, 3u);
    EXPECT_EQ(*arr.int_at(1), -2);
    EXPECT_EQ(f.at("t.arr_str").strings, (std::vector<std::string>{"a", "bc", ""}));
    EXPECT_THROW(f.get_string("t.u8"), Error);
    EXPECT_THROW(f.get_int("missing.key"), Error);

    ASSERT_EQ(f.tensors().size(), 6u);
    const auto& a = f.tensor("a");
    EXPECT_EQ(a.torch_shape(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.nbytes, 24u);
    auto data = f.tensor_data(a);
    EXPECT_EQ(std::memcmp(data.data(), w.a.data(), 24), 0);
    // Zero copy: the bytes are inside the mapping.
    EXPECT_GE(data.data(), f.mapping()->data());
    EXPECT_LT(data.data(), f.mapping()->data() + f.mapping()->size());
    EXPECT_EQ(f.tensor("q8").nbytes, 68u);
    EXPECT_EQ(f.tensor("tq2").type, GgmlType::tq2_0);
    EXPECT_EQ(std::memcmp(f.tensor_data(f.tensor("tq1")).data(), w.tq1.data(), 54), 0);
    for (const auto& t : f.tensors()) EXPECT_EQ(t.offset % alignment, 0u) << t.name;
    EXPECT_TRUE(f.detection_note().empty());
  }
}

TEST(Gguf, NestedArraysRoundTrip) {
  TempDir dir;
  GgufWriter g;
  const std::vector<float> f1 = {1.0f, 2.0f}, f2 = {3.0f};
  g.set("nested", GgufValue::array_of({GgufValue::scalar_array<float>(GgufValueType::f32, f1),
                                       GgufValue::scalar_array<float>(GgufValueType::f32, f2)}));
  g.write_header(dir.file("n.gguf"));
  g.finish();
  const GgufFile f = GgufFile::open(dir.file("n.gguf"));
  const GgufValue& v = f.at("nested");
  ASSERT_EQ(v.elem_type, GgufValueType::array);
  ASSERT_EQ(v.arrays.size(), 2u);
  EXPECT_EQ(*v.arrays[0].float_at(1), 2.0);
  EXPECT_EQ(*v.arrays[1].float_at(0), 3.0);
  EXPECT_TRUE(f.tensors().empty());
}

TEST(Gguf, OursReadByGgufPy) {
  BITNET_REQUIRE_ORACLE("gguf");
  TempDir dir;
  const std::string path = dir.file("ours.gguf");
  const Written w = write_sample(path, 64);
  const auto out = test::run_model_oracle("gguf_read", test::read_file(path));
  const auto j = nlohmann::json::parse(out.begin(), out.end());
  const auto& kv = j["kv"];
  EXPECT_EQ(kv["general.alignment"]["value"], 64);
  EXPECT_EQ(kv["t.u8"]["type"][0], 0);
  EXPECT_EQ(kv["t.u8"]["value"], 200);
  EXPECT_EQ(kv["t.i8"]["value"], -100);
  EXPECT_EQ(kv["t.u16"]["value"], 60000);
  EXPECT_EQ(kv["t.i16"]["value"], -30000);
  EXPECT_EQ(kv["t.u32"]["value"], 4000000000u);
  EXPECT_EQ(kv["t.i32"]["value"], -7);
  EXPECT_EQ(kv["t.f32"]["value"], 0.25);
  EXPECT_EQ(kv["t.bool"]["value"], true);
  EXPECT_EQ(kv["t.str"]["value"], "h\xc3\xa9llo");
  EXPECT_EQ(kv["t.u64"]["type"][0], 10);
  EXPECT_EQ(kv["t.u64"]["value"], (1ull << 40) + 3);
  EXPECT_EQ(kv["t.i64"]["value"], -(int64_t(1) << 40));
  EXPECT_EQ(kv["t.f64"]["value"], 1.0 / 3.0);
  EXPECT_EQ(kv["t.arr_i32"]["type"], nlohmann::json::array({9, 5}));
  EXPECT_EQ(kv["t.arr_i32"]["value"], nlohmann::json::array({1, -2, 3}));
  EXPECT_EQ(kv["t.arr_str"]["value"], nlohmann::json::array({"a", "bc", ""}));

  const GgufFile ours = GgufFile::open(path);
  ASSERT_EQ(j["tensors"].size(), ours.tensors().size());
  for (size_t i = 0; i < ours.tensors().size(); ++i) {
    const auto& t = ours.tensors()[i];
    const auto& o = j["tensors"][i];
    EXPECT_EQ(o["name"], t.name);
    EXPECT_EQ(o["type"], t.type_id) << t.name;
    EXPECT_EQ(o["shape"].get<std::vector<int64_t>>(), t.dims) << t.name;
    EXPECT_EQ(o["offset"], ours.data_offset() + t.offset) << t.name;
    EXPECT_EQ(o["nbytes"], t.nbytes) << t.name;
    const auto d = ours.tensor_data(t);
    EXPECT_EQ(o["hex"], test::to_hex(d.data(), d.size())) << t.name;
  }
}

TEST(Gguf, ReadsGgufPyWriterFile) {
  BITNET_REQUIRE_ORACLE("gguf");
  TempDir dir;
  const std::string path = dir.file("py.gguf");
  test::write_file(path, test::run_model_oracle("gguf_write", {}));
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.architecture(), "bitnet-b1.58");
  EXPECT_EQ(f.get_int("test.u32"), 4000000000ll);
  EXPECT_EQ(f.get_int("test.i32"), -7);
  EXPECT_EQ(f.get_float("test.f32"), 0.25);
  EXPECT_EQ(f.get_int("test.u64"), (int64_t(1) << 40) + 3);
  EXPECT_EQ(f.get_int("test.i64"), -(int64_t(1) << 40));
  EXPECT_EQ(f.get_float("test.f64"), 1.0 / 3.0);
  EXPECT_EQ(f.at("test.bool").bits, 1u);
  EXPECT_EQ(f.get_string("test.str"), "h\xc3\xa9llo");
  EXPECT_EQ(f.at("test.arr_str").strings, (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_EQ(*f.at("test.arr_i32").int_at(2), 3);
  EXPECT_EQ(f.get_int("test.u8"), 200);
  EXPECT_EQ(f.get_int("test.i8"), -100);
  EXPECT_EQ(f.get_int("test.u16"), 60000);
  EXPECT_EQ(f.get_int("test.i16"), -30000);

  const auto& a = f.tensor("a");
  EXPECT_EQ(a.type, GgmlType::f32);
  EXPECT_EQ(a.torch_shape(), (std::vector<int64_t>{2, 3}));
  std::vector<float> av(6);
  std::memcpy(av.data(), f.tensor_data(a).data(), 24);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(av[i], i - 2.5f);
  const auto& h = f.tensor("h");
  EXPECT_EQ(h.type, GgmlType::f16);
  const auto hd = f.tensor_data(h);
  for (int i = 0; i < 8; ++i) {
    uint16_t bits;
    std::memcpy(&bits, hd.data() + 2 * i, 2);
    EXPECT_EQ(f16_to_f32(bits), i / 4.0f);
  }
  const auto& t = f.tensor("t");
  EXPECT_EQ(t.type, GgmlType::tq2_0);
  EXPECT_EQ(t.torch_shape(), (std::vector<int64_t>{2, 256}));
  EXPECT_EQ(t.nbytes, 132u);
  uint16_t d;
  std::memcpy(&d, f.tensor_data(t).data() + 64, 2);
  EXPECT_EQ(f16_to_f32(d), 0.75f);
}

TEST(Gguf, ReadsRealTokenizerFiles) {
  const std::string dir = std::string(BITNET_SHARED_DATA) + "/tokenizers/";
  if (!std::filesystem::exists(dir + "ggml-vocab-llama-spm.gguf")) GTEST_SKIP() << "no tokenizer GGUFs in " << dir;
  const GgufFile spm = GgufFile::open(dir + "ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(spm.get_string("tokenizer.ggml.model"), "llama");
  const GgufValue& tokens = spm.at("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.elem_type, GgufValueType::string);
  EXPECT_EQ(tokens.count, 32000u);
  EXPECT_EQ(tokens.strings[1], "<s>");
  EXPECT_EQ(tokens.strings[2], "</s>");
  EXPECT_EQ(spm.at("tokenizer.ggml.scores").count, 32000u);
  EXPECT_EQ(spm.at("tokenizer.ggml.token_type").count, 32000u);
  EXPECT_EQ(*spm.at("tokenizer.ggml.token_type").int_at(3), 6);  // <0x00> is a BYTE token
  const GgufFile gpt2 = GgufFile::open(dir + "ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(gpt2.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(gpt2.at("tokenizer.ggml.merges").elem_type, GgufValueType::string);

  if (!test::oracle_unavailable_reason("gguf").empty()) return;
  const auto out = test::run_model_oracle("gguf_read", test::read_file(dir + "ggml-vocab-llama-spm.gguf"));
  const auto j = nlohmann::json::parse(out.begin(), out.end());
  EXPECT_EQ(j["kv"].size() + 0, spm.metadata().size());
  EXPECT_EQ(j["kv"]["tokenizer.ggml.tokens"]["value"][1000], tokens.strings[1000]);
  EXPECT_FLOAT_EQ(j["kv"]["tokenizer.ggml.scores"]["value"][1000].get<float>(),
                  static_cast<float>(*spm.at("tokenizer.ggml.scores").float_at(1000)));
}

// A one-tensor file whose tensor has type id 36, with the given architecture.
void write_i2s_file(const std::string& path, const std::string& arch, int file_type) {
  GgufWriter g;
  g.set("general.architecture", GgufValue::string(arch));
  if (file_type >= 0) g.set("general.file_type", GgufValue::u32(file_type));
  g.add_tensor("blk.0.attn_q.weight", {256, 4}, GgmlType::i2_s);
  std::vector<uint8_t> data(256 * 4 / 4 + 32, 0x55);
  g.write_header(path);
  g.write_tensor(as_span(data));
  g.finish();
}

TEST(Gguf, TypeId36IsI2SOnlyInBitnetCppFiles) {
  TempDir dir;
  write_i2s_file(dir.file("b.gguf"), "bitnet-b1.58", -1);
  const GgufFile f = GgufFile::open(dir.file("b.gguf"));
  EXPECT_EQ(f.tensors()[0].type, GgmlType::i2_s);
  EXPECT_EQ(f.tensors()[0].nbytes, 256u + 32u);
  EXPECT_NE(f.detection_note().find("I2_S"), std::string::npos);
  EXPECT_NE(f.detection_note().find("bitnet-b1.58"), std::string::npos);

  write_i2s_file(dir.file("l.gguf"), "llama", 40);  // bitnet.cpp's Llama3-8B-1.58: arch llama, ftype 40
  EXPECT_NE(GgufFile::open(dir.file("l.gguf")).detection_note().find("file_type = 40"), std::string::npos);

  write_i2s_file(dir.file("u.gguf"), "llama", -1);
  const std::string msg = test::error_of([&] { GgufFile::open(dir.file("u.gguf")); });
  EXPECT_NE(msg.find("type id 36"), std::string::npos) << msg;
  EXPECT_NE(msg.find("u.gguf"), std::string::npos) << msg;
}

TEST(Gguf, WriterRefusesBadInput) {
  GgufWriter g;
  g.set("k", GgufValue::u32(1));
  EXPECT_THROW(g.set("k", GgufValue::u32(2)), Error);
  EXPECT_THROW(g.add_tensor("x", {255}, GgmlType::tq2_0), Error);  // rows not a multiple of 256
  EXPECT_THROW(g.add_tensor(std::string(64, 'n'), {4}, GgmlType::f32), Error);
  EXPECT_THROW(g.add_tensor("z", {0}, GgmlType::f32), Error);
  g.add_tensor("x", {4}, GgmlType::f32);
  EXPECT_THROW(g.add_tensor("x", {4}, GgmlType::f32), Error);
  TempDir dir;
  g.write_header(dir.file("w.gguf"));
  const std::vector<float> three = {1, 2, 3};
  EXPECT_THROW(g.write_tensor(as_span(three)), Error);  // 12 bytes, 16 declared
  EXPECT_THROW(g.finish(), Error);                      // tensor x not written
  EXPECT_THROW(GgufWriter(24), Error);
  GgufWriter g2;
  EXPECT_THROW(g2.set("general.alignment", GgufValue::u32(64)), Error);
}

TEST(Gguf, TypeTable) {
  EXPECT_EQ(parse_ggml_type("tq2_0"), GgmlType::tq2_0);
  EXPECT_EQ(parse_ggml_type("I2_S"), GgmlType::i2_s);
  EXPECT_THROW(parse_ggml_type("q9_9"), Error);
  EXPECT_FALSE(ggml_type_info(4).has_value());   // Q4_2, removed
  EXPECT_FALSE(ggml_type_info(31).has_value());  // Q4_0_4_4, removed
  EXPECT_FALSE(ggml_type_info(37).has_value());  // I8_S: activations only
  const std::vector<int64_t> dims = {2560, 6912};
  EXPECT_EQ(ggml_nbytes(GgmlType::tq2_0, dims), 2560ull * 6912 / 256 * 66);
  EXPECT_EQ(ggml_nbytes(GgmlType::tq1_0, dims), 2560ull * 6912 / 256 * 54);
  EXPECT_EQ(ggml_nbytes(GgmlType::i2_s, dims), 2560ull * 6912 / 4 + 32);
  EXPECT_EQ(ggml_nbytes(GgmlType::q8_0, dims), 2560ull * 6912 / 32 * 34);
  const std::vector<int64_t> huge = {int64_t(1) << 62, 4};
  EXPECT_THROW(ggml_nbytes(GgmlType::f32, huge), Error);
}

}  // namespace
}  // namespace bitnet
