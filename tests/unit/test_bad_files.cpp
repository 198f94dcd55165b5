// Hostile model files: each kind of broken GGUF and safetensors file, and every truncated prefix of small valid
// ones, must be refused with a bitnet::Error that names the file and the field, never a crash or a huge
// allocation (this suite also runs under ASan + UBSan). Cases follow ../shared/specs/reliability.md.
#include <bitnet/gguf.h>
#include <bitnet/safetensors.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "io_test_util.h"

namespace bitnet {
namespace {

constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

// Builds GGUF bytes field by field, so a test can put any value anywhere.
struct G {
  std::vector<uint8_t> b;
  G& u32(uint32_t v) { return raw(&v, 4); }
  G& u64(uint64_t v) { return raw(&v, 8); }
  G& u8(uint8_t v) { return raw(&v, 1); }
  G& str(const std::string& s) { u64(s.size()); return raw(s.data(), s.size()); }
  G& raw(const void* p, size_t n) {
    const size_t old = b.size();
    b.resize(old + n);
    if (n) std::memcpy(b.data() + old, p, n);
    return *this;
  }
  G& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
  }
  G& kv_u32(const std::string& k, uint32_t v) { return str(k).u32(4).u32(v); }
  G& kv_str(const std::string& k, const std::string& v) { return str(k).u32(8).str(v); }
  G& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (auto d : dims) u64(d);
    return u32(type).u64(offset);
  }
  G& pad(size_t align = 32) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  G& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

std::string gguf_error(const std::vector<uint8_t>& bytes) {
  return test::error_of([&] {
    GgufFile::from_bytes(std::as_bytes(std::span<const uint8_t>(bytes)), "bad.gguf");
  });
}

#define EXPECT_GGUF_ERROR(bytes, needle)                                            \
  do {                                                                            \
    const std::string m_ = gguf_error(bytes);                                     \
    EXPECT_NE(m_.find("bad.gguf"), std::string::npos) << m_;                      \
    EXPECT_NE(m_.find(needle), std::string::npos) << "expected '" << needle << "' in: " << m_; \
  } while (0)

TEST(BadGguf, Header) {
  EXPECT_GGUF_ERROR(G().u32(0x46554746).u32(3).u64(0).u64(0).b, "magic");
  EXPECT_GGUF_ERROR(G().header(0, 0, 0).b, "version 0");
  EXPECT_GGUF_ERROR(G().header(0, 0, 1).b, "version 1");
  EXPECT_GGUF_ERROR(G().header(0, 0, 4).b, "version 4");
  EXPECT_GGUF_ERROR(G().header(0, 0, 0x03000000).b, "big-endian");
  EXPECT_GGUF_ERROR(G().header(kMax64, 0).b, "tensor_count");
  EXPECT_GGUF_ERROR(G().header(0, kMax64).b, "metadata_kv_count");
  EXPECT_GGUF_ERROR(G().header(0, 1).b, "metadata_kv_count");  // 1 entry cannot fit in 0 bytes
  EXPECT_GGUF_ERROR(G().u32(0x46554747).u32(3).b, "tensor_count");
  EXPECT_GGUF_ERROR(G().u8('G').b, "too short");
}

TEST(BadGguf, Metadata) {
  EXPECT_GGUF_ERROR(G().header(0, 1).u64(uint64_t(1) << 63).zeros(16).b, "key of metadata entry 0");
  EXPECT_GGUF_ERROR(G().header(0, 1).str("").u32(4).u32(1).b, "empty key");
  EXPECT_GGUF_ERROR(G().header(0, 1).str("k").u32(13).u32(1).b, "value type 13");
  EXPECT_GGUF_ERROR(G().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).b, "duplicate metadata key 'k'");
  EXPECT_GGUF_ERROR(G().header(0, 1).str("s").u32(8).u64(1000).raw("abc", 3).zeros(16).b, "string value of 's'");
  EXPECT_GGUF_ERROR(G().header(0, 1).str("a").u32(9).u32(0).u64(uint64_t(1) << 62).zeros(16).b, "array 'a'");
  EXPECT_GGUF_ERROR(G().header(0, 1).str("a").u32(9).u32(8).u64(kMax64 / 8).zeros(40).b, "array 'a'");
  EXPECT_GGUF_ERROR(G().header(0, 1).str("a").u32(9).u32(42).u64(1).zeros(16).b, "element type of array 'a'");
  EXPECT_GGUF_ERROR(G().header(0, 1).str("b").u32(7).u8(2).zeros(16).b, "expected 0 or 1");
  // Arrays nested deeper than the limit: a depth bomb, not a stack overflow.
  G deep;
  deep.header(0, 1).str("d").u32(9);
  for (int i = 0; i < 20; ++i) deep.u32(9).u64(1);
  deep.u32(0).u64(0).zeros(64);
  EXPECT_GGUF_ERROR(deep.b, "deeper");
  // general.alignment: wrong type, zero, not a power of two, too large.
  EXPECT_GGUF_ERROR(G().header(0, 1).str("general.alignment").u32(0).u8(32).zeros(16).b, "expected u32");
  EXPECT_GGUF_ERROR(G().header(0, 1).kv_u32("general.alignment", 0).b, "general.alignment is 0");
  EXPECT_GGUF_ERROR(G().header(0, 1).kv_u32("general.alignment", 48).b, "power of two");
  EXPECT_GGUF_ERROR(G().header(0, 1).kv_u32("general.alignment", 1u << 30).b, "power of two");
}

// One F32 [8] tensor plus `extra` tensor infos, then data of `data_bytes`.
G one_tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset,
             const std::string& arch = "llama") {
  G g;
  g.header(1, 1).kv_str("general.architecture", arch).tensor(name, std::move(dims), type, offset).pad();
  return g;
}

TEST(BadGguf, TensorInfos) {
  EXPECT_GGUF_ERROR(one_tensor(std::string(100, 'x'), {8}, 0, 0).zeros(32).b, "name of tensor 0");
  EXPECT_GGUF_ERROR(one_tensor("", {8}, 0, 0).zeros(32).b, "empty name");
  EXPECT_GGUF_ERROR(one_tensor("t", {}, 0, 0).zeros(32).b, "n_dims 0");
  EXPECT_GGUF_ERROR(one_tensor("t", {1, 1, 1, 1, 1}, 0, 0).zeros(64).b, "n_dims 5");
  EXPECT_GGUF_ERROR(one_tensor("t", {8, 0}, 0, 0).zeros(32).b, "dims[1]");
  EXPECT_GGUF_ERROR(one_tensor("t", {uint64_t(1) << 63}, 0, 0).zeros(32).b, "dims[0]");
  EXPECT_GGUF_ERROR(one_tensor("t", {uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0).zeros(32).b, "overflows");
  // Element count fits, byte size does not (the NBYTES_TOO_BIG case).
  EXPECT_GGUF_ERROR(one_tensor("t", {uint64_t(1) << 62}, 0, 0).zeros(32).b, "overflow");
  EXPECT_GGUF_ERROR(one_tensor("t", {8}, 4, 0).zeros(32).b, "type id 4");
  EXPECT_GGUF_ERROR(one_tensor("t", {8}, 1000, 0).zeros(32).b, "type id 1000");
  EXPECT_GGUF_ERROR(one_tensor("t", {256}, 36, 0).zeros(128).b, "type id 36");
  EXPECT_GGUF_ERROR(one_tensor("t", {256}, 39, 0, "bitnet-b1.58").zeros(256).b, "TL2");
  EXPECT_GGUF_ERROR(one_tensor("t", {256}, 38, 0, "bitnet-b1.58").zeros(256).b, "TL1");
  EXPECT_GGUF_ERROR(one_tensor("t", {256}, 38, 0, "llama").zeros(256).b, "type id 38");
  EXPECT_NO_THROW(GgufFile::from_bytes(std::as_bytes(std::span<const uint8_t>(one_tensor("t", {256}, 39, 0).zeros(256).b)),
                                       "mxfp4.gguf"));  // upstream's MXFP4 elsewhere
  EXPECT_GGUF_ERROR(one_tensor("t", {100}, 35, 0).zeros(128).b, "divisible by its block size 256");
  EXPECT_GGUF_ERROR(one_tensor("t", {100}, 36, 0, "bitnet-b1.58").zeros(128).b, "divisible by 128");
  EXPECT_GGUF_ERROR(one_tensor("t", {8}, 0, 1).zeros(64).b, "not a multiple of the alignment");
  EXPECT_GGUF_ERROR(one_tensor("t", {8}, 0, 64).zeros(32).b, "past the end");
  EXPECT_GGUF_ERROR(one_tensor("t", {8}, 0, kMax64 - 31).zeros(32).b, "past the end");
  EXPECT_GGUF_ERROR(one_tensor("t", {8}, 0, 0).zeros(31).b, "past the end");  // NOT_ENOUGH_DATA
  // Data section start past the end of the file.
  EXPECT_GGUF_ERROR(G().header(1, 0).tensor("t", {8}, 0, 0).b, "past the end");
}

TEST(BadGguf, DuplicateAndOverlappingTensors) {
  G dup;
  dup.header(2, 0).tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).pad().zeros(64);
  EXPECT_GGUF_ERROR(dup.b, "duplicate tensor name 't'");
  G overlap;
  overlap.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad().zeros(96);
  EXPECT_GGUF_ERROR(overlap.b, "overlap");
  G ok;  // the same two tensors side by side are fine
  ok.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 64).pad().zeros(96);
  EXPECT_NO_THROW(GgufFile::from_bytes(std::as_bytes(std::span<const uint8_t>(ok.b)), "ok.gguf"));
}

TEST(BadGguf, EveryTruncatedPrefixFailsCleanly) {
  test::TempDir dir;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("bitnet-b1.58"));
  w.set("general.name", GgufValue::string("tiny"));
  w.set("arr", GgufValue::string_array({"x", "yz"}));
  const std::vector<int32_t> ints = {1, 2, 3};
  w.set("ints", GgufValue::scalar_array<int32_t>(GgufValueType::i32, ints));
  w.add_tensor("w", {8}, GgmlType::f32);       // 32 bytes: no padding after
  w.add_tensor("q", {128}, GgmlType::i2_s);    // 64 bytes
  w.write_header(dir.file("ok.gguf"));
  const std::vector<uint8_t> a(32, 1), q(64, 0x55);
  w.write_tensor(std::as_bytes(std::span<const uint8_t>(a)));
  w.write_tensor(std::as_bytes(std::span<const uint8_t>(q)));
  w.finish();
  const auto full = test::read_file(dir.file("ok.gguf"));
  ASSERT_NO_THROW(GgufFile::from_bytes(std::as_bytes(std::span<const uint8_t>(full)), "ok.gguf"));
  for (size_t n = 0; n < full.size(); ++n) {
    // A fresh allocation of exactly n bytes, so ASan sees any read past the prefix.
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string m = gguf_error(prefix);
    EXPECT_NE(m.find("bad.gguf"), std::string::npos) << "prefix " << n << ": " << m;
  }
  // Single-byte corruptions anywhere in the header either parse or fail with bitnet::Error.
  for (size_t i = 0; i + 96 < full.size(); ++i) {
    std::vector<uint8_t> bad = full;
    bad[i] ^= 0xA5;
    try {
      GgufFile::from_bytes(std::as_bytes(std::span<const uint8_t>(bad)), "flip.gguf");
    } catch (const Error&) {
    }
  }
}

// ---- safetensors ----------------------------------------------------------------------------------------------
std::vector<uint8_t> st_bytes(const std::string& header, size_t data_bytes, uint64_t header_len = kMax64) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
  const uint64_t n = header_len == kMax64 ? header.size() : header_len;
  std::memcpy(b.data(), &n, 8);
  if (!header.empty()) std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

std::string st_error(const std::vector<uint8_t>& bytes) {
  return test::error_of([&] {
    SafetensorsFile::from_bytes(std::as_bytes(std::span<const uint8_t>(bytes)), "bad.safetensors");
  });
}

#define EXPECT_ST_ERROR(bytes, needle)                                                        \
  do {                                                                                      \
    const std::string m_ = st_error(bytes);                                                 \
    EXPECT_NE(m_.find("bad.safetensors"), std::string::npos) << m_;                         \
    EXPECT_NE(m_.find(needle), std::string::npos) << "expected '" << needle << "' in: " << m_; \
  } while (0)

TEST(BadSafetensors, HeaderAndJson) {
  EXPECT_ST_ERROR(std::vector<uint8_t>(5, 0), "header length");
  EXPECT_ST_ERROR(st_bytes("{}", 0, uint64_t(200) << 20), "at most 100000000");
  EXPECT_ST_ERROR(st_bytes("{}", 0, 1000), "JSON header");  // longer than the file
  EXPECT_ST_ERROR(st_bytes(" {}", 0), "must start with '{'");
  EXPECT_ST_ERROR(st_bytes("[1]", 0), "must start with '{'");
  EXPECT_ST_ERROR(st_bytes("{\"a\": ", 0), "invalid JSON");
  EXPECT_ST_ERROR(st_bytes("{\"\xff\": 1}", 0), "invalid JSON");  // not UTF-8
  EXPECT_ST_ERROR(st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2),
                  "duplicate JSON key");
  EXPECT_ST_ERROR(st_bytes("{\"__metadata__\": {\"k\": 1}}", 0), "__metadata__");
  EXPECT_ST_ERROR(st_bytes("{\"x\": " + std::string(100, '[') + std::string(100, ']') + "}", 0), "deeper");
}

TEST(BadSafetensors, TensorEntries) {
  auto one = [](const std::string& dtype, const std::string& shape, const std::string& off, size_t data) {
    return st_bytes(R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + off + "}}", data);
  };
  EXPECT_ST_ERROR(one("F8_E4M3", "[2]", "[0,2]", 2), "unknown safetensors dtype 'F8_E4M3'");
  EXPECT_ST_ERROR(one("F32", "[-1]", "[0,4]", 4), "non-negative integer");
  EXPECT_ST_ERROR(one("F32", "[1.5]", "[0,4]", 4), "non-negative integer");
  EXPECT_ST_ERROR(one("F32", "[4294967296,4294967296]", "[0,4]", 4), "overflows");
  EXPECT_ST_ERROR(one("F32", "[4611686018427387904]", "[0,4]", 4), "overflows");  // numel fits, bytes do not
  EXPECT_ST_ERROR(one("F32", "[2]", "[0,4]", 4), "TensorInvalidInfo");
  EXPECT_ST_ERROR(one("F32", "[1]", "[4,0]", 4), "negative range");
  EXPECT_ST_ERROR(one("F32", "[1]", "[0,4,8]", 8), "data_offsets");
  EXPECT_ST_ERROR(one("F32", "[1]", "[8,12]", 4), "past the 4-byte data buffer");
  EXPECT_ST_ERROR(one("F32", "[1]", "[4,8]", 8), "a gap");
  EXPECT_ST_ERROR(one("F32", "[1]", "[0,4]", 8), "MetadataIncompleteBuffer");  // bytes nobody owns
  EXPECT_ST_ERROR(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                  "overlapping");
  EXPECT_ST_ERROR(st_bytes(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", 4), "dtype");
  EXPECT_ST_ERROR(st_bytes(R"({"t":[1,2]})", 0), "expected an object");
}

TEST(BadSafetensors, EveryTruncatedPrefixFailsCleanly) {
  test::TempDir dir;
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_tensor("a", StDType::bf16, {2, 3});
  w.add_tensor("b", StDType::u8, {5});
  w.write_header(dir.file("ok.safetensors"));
  const std::vector<uint8_t> a(12, 7), b(5, 9);
  w.write(std::as_bytes(std::span<const uint8_t>(a)));
  w.write(std::as_bytes(std::span<const uint8_t>(b)));
  w.finish();
  const auto full = test::read_file(dir.file("ok.safetensors"));
  ASSERT_NO_THROW(SafetensorsFile::from_bytes(std::as_bytes(std::span<const uint8_t>(full)), "ok"));
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string m = st_error(prefix);
    EXPECT_NE(m.find("bad.safetensors"), std::string::npos) << "prefix " << n << ": " << m;
  }
}

}  // namespace
}  // namespace bitnet
