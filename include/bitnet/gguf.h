#pragma once
// GGUF v2/v3 files (llama.cpp's model format): a validating reader whose tensor data stays in the mmap'd file,
// and a streaming writer (header first, then tensor data one tensor at a time, so a converter holds at most
// one tensor in memory). Byte layout: ../shared/specs/formats.md §2.3.
#include <bitnet/memory.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

// ---- tensor types (ggml_type ids) ----------------------------------------------------------------------------
// Ids as upstream ggml numbers them, plus bitnet.cpp's I2_S, which reuses id 36 (retired upstream). A file's
// id 36 means I2_S only when the file comes from bitnet.cpp; the reader decides from the file's metadata.
enum class GgmlType : uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
  q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
  iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23,
  i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30,
  tq1_0 = 34, tq2_0 = 35,
  i2_s = 36,  // bitnet.cpp fork only (upstream: retired IQ4_NL_4_4)
  mxfp4 = 39, nvfp4 = 40, q1_0 = 41,
};

struct GgmlTypeInfo {
  std::string_view name;  // "TQ2_0", as llama.cpp prints it
  int64_t block_elems;    // elements per block along dims[0]
  int64_t block_bytes;    // bytes per block
};

// Nullopt for ids that are unknown or retired upstream (4, 5, 31-33, 37, 38). Id 36 gives I2_S's sizes; whether a
// file's 36 really is I2_S is the reader's decision (see GgufFile::detection_note).
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id);
std::string_view ggml_type_name(GgmlType type);
// Parses "f32", "TQ2_0", "i2_s" ... (case-insensitive); throws listing the accepted names.
GgmlType parse_ggml_type(std::string_view name);
// Bytes of a tensor with these GGUF dims (dims[0] innermost). I2_S: numel/4 + 32 (tail holding the f32 scale).
// Throws when dims[0] is not a multiple of the block size or the size overflows.
uint64_t ggml_nbytes(GgmlType type, std::span<const int64_t> dims);

// ---- metadata values ------------------------------------------------------------------------------------------
enum class GgufValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType type);
// Bytes of one element of a fixed-size type; 0 for string and array.
size_t gguf_scalar_size(GgufValueType type);

// One metadata value. Scalars keep their bits; arrays of scalars keep their little-endian element bytes (so a
// 128k-entry token_type array is one allocation), arrays of strings and nested arrays keep their elements.
struct GgufValue {
  GgufValueType type = GgufValueType::u32;
  uint64_t bits = 0;              // scalar value bits, zero-extended (f32/f64 as IEEE bits)
  std::string str;                // type == string
  GgufValueType elem_type = GgufValueType::u8;  // type == array
  uint64_t count = 0;                           // array length
  std::vector<std::byte> raw;                   // array of scalars: count * gguf_scalar_size(elem_type)
  std::vector<std::string> strings;             // array of strings
  std::vector<GgufValue> arrays;                // array of arrays

  static GgufValue u8(uint8_t v);
  static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v);
  static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue i64(int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue string_array(std::vector<std::string> v);
  static GgufValue array_of(std::vector<GgufValue> elements);  // all of one type (nested arrays allowed)
  template <class T>
  static GgufValue scalar_array(GgufValueType elem, std::span<const T> values);

  bool is_integer() const;  // u8..i64 and bool
  bool is_float() const;
  // Value as integer / float, converting between the numeric types; nullopt for strings and arrays, and for
  // integers that do not fit.
  std::optional<int64_t> as_int() const;
  std::optional<uint64_t> as_uint() const;
  std::optional<double> as_float() const;
  // Element i of an array of scalars, converted as above.
  std::optional<int64_t> int_at(uint64_t i) const;
  std::optional<double> float_at(uint64_t i) const;
  // Short human-readable rendering; arrays show their length and first elements.
  std::string to_string(size_t max_elems = 8) const;

  bool operator==(const GgufValue&) const = default;
};

template <class T>
GgufValue GgufValue::scalar_array(GgufValueType elem, std::span<const T> values) {
  GgufValue v;
  v.type = GgufValueType::array;
  v.elem_type = elem;
  v.count = values.size();
  const auto* p = reinterpret_cast<const std::byte*>(values.data());
  v.raw.assign(p, p + values.size_bytes());
  return v;
}

// ---- reading --------------------------------------------------------------------------------------------------
struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGUF order: dims[0] is innermost (the reverse of the PyTorch shape)
  GgmlType type = GgmlType::f32;
  uint32_t type_id = 0;       // the id as stored in the file
  uint64_t offset = 0;        // relative to the start of the data section, as stored
  uint64_t nbytes = 0;

  int64_t numel() const;
  std::vector<int64_t> torch_shape() const;  // dims reversed
};

struct GgufLimits {
  size_t max_depth = 8;                  // nested arrays
  uint64_t max_string = 1ull << 30;      // bytes in one string (besides the file-size bound)
  uint64_t max_tensor_name = 64;         // GGML_MAX_NAME
  uint32_t max_alignment = 1u << 20;     // general.alignment
};

class GgufFile {
 public:
  // Maps and validates the whole structure (header, metadata, tensor table, data bounds); tensor bytes are
  // not read. Throws bitnet::Error naming the file, the field and what was expected.
  static GgufFile open(const std::string& path, const GgufLimits& limits = {});
  // Parses bytes the caller keeps alive (fuzzing, in-memory tests); `name` is used in messages.
  static GgufFile from_bytes(std::span<const std::byte> bytes, std::string name, const GgufLimits& limits = {});

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the tensor-data section
  uint64_t file_size() const { return bytes_.size(); }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  // Typed look-ups that throw naming the file and the key when it is missing or of another type.
  const GgufValue& at(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  std::string architecture() const;  // general.architecture or ""

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  const GgufTensorInfo& tensor(std::string_view name) const;  // throws when absent
  // The tensor's bytes inside the mapping (no copy).
  std::span<const std::byte> tensor_data(const GgufTensorInfo& info) const;
  // What the reader decided about type ids whose meaning depends on the file (e.g. "type id 36 read as
  // bitnet.cpp I2_S because general.architecture = bitnet-b1.58"); empty when there were none.
  const std::string& detection_note() const { return detection_note_; }

  std::shared_ptr<MappedFile> mapping() const { return file_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;  // null for from_bytes
  std::span<const std::byte> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  std::string detection_note_;

  void parse(const GgufLimits& limits);
};

// ---- writing --------------------------------------------------------------------------------------------------
// Streaming writer: declare metadata and tensors, write_header(), then write_tensor() for each tensor in the
// order declared, then finish(). Files read back with llama.cpp's gguf-py (checked in tests).
class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32);  // power of two; stored as general.alignment when not 32
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  void set(std::string key, GgufValue value);  // throws on a duplicate key
  // Declares a tensor (dims in GGUF order); returns its byte size.
  uint64_t add_tensor(std::string name, std::vector<int64_t> dims, GgmlType type);
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  void write_header(const std::string& path);
  // Bytes of the next declared tensor; the size must match.
  void write_tensor(std::span<const std::byte> bytes);
  void finish();  // checks that every tensor was written, flushes and closes

 private:
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<GgufTensorInfo> tensors_;
  uint64_t data_bytes_ = 0;
  std::string path_;
  std::FILE* out_ = nullptr;
  size_t next_ = 0;
  uint64_t written_ = 0;  // bytes of tensor data written so far (padded)
  void put(const void* data, size_t n);
};

}  // namespace bitnet
