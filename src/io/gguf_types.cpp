// GGUF type tables (ggml tensor types, metadata value types) and GgufValue helpers.
#include <bitnet/error.h>
#include <bitnet/gguf.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <limits>

#include "io/byte_reader.h"

namespace bitnet {

namespace {
struct TypeRow {
  uint32_t id;
  GgmlTypeInfo info;
};
// Block sizes as llama.cpp's gguf-py GGML_QUANT_SIZES lists them (formats.md §2.3); I2_S is special-cased in
// ggml_nbytes (128-element blocks of 32 bytes, plus a 32-byte tail for the scale).
constexpr std::array<TypeRow, 35> kTypes = {{
    {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},      {3, {"Q4_1", 32, 20}},
    {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},      {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 40}},
    {10, {"Q2_K", 256, 84}},    {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}}, {17, {"IQ2_XS", 256, 74}},
    {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},   {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},
    {22, {"IQ2_S", 256, 82}},   {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},        {29, {"IQ1_M", 256, 56}},
    {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},   {35, {"TQ2_0", 256, 66}},   {36, {"I2_S", 128, 32}},
    {39, {"MXFP4", 32, 17}},    {40, {"NVFP4", 64, 36}},    {41, {"Q1_0", 128, 18}},
}};
}  // namespace

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id) {
  for (const auto& row : kTypes)
    if (row.id == id) return row.info;
  return std::nullopt;
}

std::string_view ggml_type_name(GgmlType type) {
  const auto info = ggml_type_info(static_cast<uint32_t>(type));
  return info ? info->name : std::string_view("?");
}

GgmlType parse_ggml_type(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string names;
  for (const auto& row : kTypes) {
    if (row.info.name == upper) return static_cast<GgmlType>(row.id);
    names += names.empty() ? "" : ", ";
    names += row.info.name;
  }
  fail("unknown GGML tensor type '{}'; expected one of {}", name, names);
}

uint64_t ggml_nbytes(GgmlType type, std::span<const int64_t> dims) {
  const auto info = ggml_type_info(static_cast<uint32_t>(type));
  if (!info) fail("ggml type id {} has no known size", static_cast<uint32_t>(type));
  uint64_t numel = 1;
  for (int64_t d : dims) {
    if (d <= 0) fail("tensor dimension {} must be positive", d);
    if (io::mul_overflows(numel, static_cast<uint64_t>(d), &numel) || numel > uint64_t(INT64_MAX))
      fail("tensor element count overflows 64 bits");
  }
  const int64_t row = dims.empty() ? 1 : dims[0];
  if (type == GgmlType::i2_s) {
    // bitnet.cpp: the flattened tensor is cut into 128-element blocks (x86 layout), then one 32-byte tail.
    if (numel % 128 != 0) fail("I2_S needs an element count divisible by 128, got {}", numel);
    return numel / 4 + 32;
  }
  if (row % info->block_elems != 0)
    fail("{} needs rows (dims[0]) divisible by its block size {}, got {}", info->name, info->block_elems, row);
  uint64_t bytes = 0;
  if (io::mul_overflows(numel / static_cast<uint64_t>(info->block_elems), static_cast<uint64_t>(info->block_bytes),
                        &bytes))
    fail("tensor byte size overflows 64 bits");
  return bytes;
}

std::string_view gguf_value_type_name(GgufValueType type) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(type);
  return i < kNames.size() ? kNames[i] : std::string_view("?");
}

size_t gguf_scalar_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::u8: case GgufValueType::i8: case GgufValueType::boolean: return 1;
    case GgufValueType::u16: case GgufValueType::i16: return 2;
    case GgufValueType::u32: case GgufValueType::i32: case GgufValueType::f32: return 4;
    case GgufValueType::u64: case GgufValueType::i64: case GgufValueType::f64: return 8;
    case GgufValueType::string: case GgufValueType::array: return 0;
  }
  return 0;
}

// ---- GgufValue ------------------------------------------------------------------------------------------------
namespace {
GgufValue scalar(GgufValueType t, uint64_t bits) {
  GgufValue v;
  v.type = t;
  v.bits = bits;
  return v;
}
template <class T>
uint64_t to_bits(T v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
// Decodes `size` little-endian bytes of a scalar of type t into (int or float) form.
struct Decoded {
  bool is_float = false;
  bool is_unsigned = false;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
};
Decoded decode(GgufValueType t, const void* p) {
  Decoded d;
  switch (t) {
    case GgufValueType::u8: { uint8_t x; std::memcpy(&x, p, 1); d.u = x; d.is_unsigned = true; break; }
    case GgufValueType::boolean: { uint8_t x; std::memcpy(&x, p, 1); d.u = x; d.is_unsigned = true; break; }
    case GgufValueType::u16: { uint16_t x; std::memcpy(&x, p, 2); d.u = x; d.is_unsigned = true; break; }
    case GgufValueType::u32: { uint32_t x; std::memcpy(&x, p, 4); d.u = x; d.is_unsigned = true; break; }
    case GgufValueType::u64: { uint64_t x; std::memcpy(&x, p, 8); d.u = x; d.is_unsigned = true; break; }
    case GgufValueType::i8: { int8_t x; std::memcpy(&x, p, 1); d.i = x; break; }
    case GgufValueType::i16: { int16_t x; std::memcpy(&x, p, 2); d.i = x; break; }
    case GgufValueType::i32: { int32_t x; std::memcpy(&x, p, 4); d.i = x; break; }
    case GgufValueType::i64: { int64_t x; std::memcpy(&x, p, 8); d.i = x; break; }
    case GgufValueType::f32: { float x; std::memcpy(&x, p, 4); d.f = x; d.is_float = true; break; }
    case GgufValueType::f64: { double x; std::memcpy(&x, p, 8); d.f = x; d.is_float = true; break; }
    default: break;
  }
  return d;
}
std::optional<int64_t> int_of(const Decoded& d) {
  if (d.is_float) return std::nullopt;
  if (d.is_unsigned) return d.u > uint64_t(INT64_MAX) ? std::nullopt : std::optional<int64_t>(int64_t(d.u));
  return d.i;
}
std::optional<double> float_of(const Decoded& d) {
  if (d.is_float) return d.f;
  return d.is_unsigned ? double(d.u) : double(d.i);
}
bool is_scalar(GgufValueType t) { return gguf_scalar_size(t) != 0; }
}  // namespace

GgufValue GgufValue::u8(uint8_t v) { return scalar(GgufValueType::u8, v); }
GgufValue GgufValue::i8(int8_t v) { return scalar(GgufValueType::i8, to_bits(v)); }
GgufValue GgufValue::u16(uint16_t v) { return scalar(GgufValueType::u16, v); }
GgufValue GgufValue::i16(int16_t v) { return scalar(GgufValueType::i16, to_bits(v)); }
GgufValue GgufValue::u32(uint32_t v) { return scalar(GgufValueType::u32, v); }
GgufValue GgufValue::i32(int32_t v) { return scalar(GgufValueType::i32, to_bits(v)); }
GgufValue GgufValue::u64(uint64_t v) { return scalar(GgufValueType::u64, v); }
GgufValue GgufValue::i64(int64_t v) { return scalar(GgufValueType::i64, to_bits(v)); }
GgufValue GgufValue::f32(float v) { return scalar(GgufValueType::f32, to_bits(v)); }
GgufValue GgufValue::f64(double v) { return scalar(GgufValueType::f64, to_bits(v)); }
GgufValue GgufValue::boolean(bool v) { return scalar(GgufValueType::boolean, v ? 1 : 0); }
GgufValue GgufValue::string(std::string v) {
  GgufValue out;
  out.type = GgufValueType::string;
  out.str = std::move(v);
  return out;
}
GgufValue GgufValue::string_array(std::vector<std::string> v) {
  GgufValue out;
  out.type = GgufValueType::array;
  out.elem_type = GgufValueType::string;
  out.count = v.size();
  out.strings = std::move(v);
  return out;
}
GgufValue GgufValue::array_of(std::vector<GgufValue> elements) {
  GgufValue out;
  out.type = GgufValueType::array;
  out.count = elements.size();
  if (elements.empty()) return out;
  out.elem_type = elements[0].type;
  for (const auto& e : elements)
    if (e.type != out.elem_type) fail("GGUF array elements must share one type ({} vs {})",
                                      gguf_value_type_name(out.elem_type), gguf_value_type_name(e.type));
  if (out.elem_type == GgufValueType::array) {
    out.arrays = std::move(elements);
  } else if (out.elem_type == GgufValueType::string) {
    for (auto& e : elements) out.strings.push_back(std::move(e.str));
  } else {
    const size_t n = gguf_scalar_size(out.elem_type);
    for (const auto& e : elements) {
      const auto* p = reinterpret_cast<const std::byte*>(&e.bits);
      out.raw.insert(out.raw.end(), p, p + n);
    }
  }
  return out;
}

bool GgufValue::is_integer() const { return is_scalar(type) && !is_float(); }
bool GgufValue::is_float() const { return type == GgufValueType::f32 || type == GgufValueType::f64; }

std::optional<int64_t> GgufValue::as_int() const {
  if (!is_scalar(type)) return std::nullopt;
  return int_of(decode(type, &bits));
}
std::optional<uint64_t> GgufValue::as_uint() const {
  if (!is_scalar(type) || is_float()) return std::nullopt;
  const Decoded d = decode(type, &bits);
  if (d.is_unsigned) return d.u;
  return d.i < 0 ? std::nullopt : std::optional<uint64_t>(uint64_t(d.i));
}
std::optional<double> GgufValue::as_float() const {
  if (!is_scalar(type)) return std::nullopt;
  return float_of(decode(type, &bits));
}
std::optional<int64_t> GgufValue::int_at(uint64_t i) const {
  if (type != GgufValueType::array || !is_scalar(elem_type) || i >= count) return std::nullopt;
  return int_of(decode(elem_type, raw.data() + i * gguf_scalar_size(elem_type)));
}
std::optional<double> GgufValue::float_at(uint64_t i) const {
  if (type != GgufValueType::array || !is_scalar(elem_type) || i >= count) return std::nullopt;
  return float_of(decode(elem_type, raw.data() + i * gguf_scalar_size(elem_type)));
}

std::string GgufValue::to_string(size_t max_elems) const {
  auto quote = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s.substr(0, 80)) out += (c == '\n') ? std::string("\\n") : std::string(1, c);
    if (s.size() > 80) out += "...";
    return out + "\"";
  };
  if (type == GgufValueType::string) return quote(str);
  if (type == GgufValueType::boolean) return bits ? "true" : "false";
  if (is_float()) return fmt::format("{}", *as_float());
  if (is_scalar(type)) {
    const Decoded d = decode(type, &bits);
    return d.is_unsigned ? fmt::format("{}", d.u) : fmt::format("{}", d.i);
  }
  std::string out = fmt::format("[{} x {}]", gguf_value_type_name(elem_type), count);
  const uint64_t n = std::min<uint64_t>(count, max_elems);
  std::vector<std::string> parts;
  for (uint64_t i = 0; i < n; ++i) {
    if (elem_type == GgufValueType::string) parts.push_back(quote(strings[i]));
    else if (elem_type == GgufValueType::array) parts.push_back(arrays[i].to_string(max_elems));
    else if (elem_type == GgufValueType::f32 || elem_type == GgufValueType::f64) parts.push_back(fmt::format("{}", *float_at(i)));
    else if (elem_type == GgufValueType::boolean) parts.push_back(*int_at(i) ? "true" : "false");
    else {
      const Decoded d = decode(elem_type, raw.data() + i * gguf_scalar_size(elem_type));
      parts.push_back(d.is_unsigned ? fmt::format("{}", d.u) : fmt::format("{}", d.i));
    }
  }
  out += fmt::format(" {}{}", fmt::join(parts, ", "), count > n ? ", ..." : "");
  return out;
}

// ---- GgufTensorInfo -------------------------------------------------------------------------------------------
int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}
std::vector<int64_t> GgufTensorInfo::torch_shape() const { return std::vector<int64_t>(dims.rbegin(), dims.rend()); }

}  // namespace bitnet
