#include <bitnet/dtype.h>
#include <bitnet/error.h>

#include <array>
#include <bit>
#include <cstring>

namespace bitnet {

namespace {
constexpr std::array<DTypeInfo, kDTypeCount> kInfo = {{
    {"f32", 1, 4, true, true},
    {"f16", 1, 2, true, true},
    {"bf16", 1, 2, true, true},
    {"i8", 1, 1, false, true},
    {"i32", 1, 4, false, true},
    {"u8", 1, 1, false, false},
}};
}  // namespace

const DTypeInfo& dtype_info(DType dtype) {
  const auto index = static_cast<size_t>(dtype);
  BITNET_CHECK(index < kInfo.size(), "[dtype] unknown dtype id {}", index);
  return kInfo[index];
}

DType parse_dtype(std::string_view name) {
  struct Alias {
    std::string_view name;
    DType dtype;
  };
  static constexpr Alias kAliases[] = {
      {"f32", DType::f32},   {"float32", DType::f32}, {"f16", DType::f16}, {"float16", DType::f16},
      {"bf16", DType::bf16}, {"bfloat16", DType::bf16}, {"i8", DType::i8}, {"int8", DType::i8},
      {"i32", DType::i32},   {"int32", DType::i32},   {"u8", DType::u8},   {"uint8", DType::u8},
  };
  for (const auto& alias : kAliases)
    if (alias.name == name) return alias.dtype;
  fail("[dtype] unknown dtype '{}' (expected f32, f16, bf16, i8, i32 or u8)", name);
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  const bool fa = is_floating(a), fb = is_floating(b);
  if (fa && fb) return DType::f32;  // f16+bf16 or any with f32
  if (fa) return a;
  if (fb) return b;
  return DType::i32;  // i8/u8/i32 mixes
}

uint16_t f32_to_f16(float value) {
  uint32_t x = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {  // Inf or NaN
    if (x == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);
    uint32_t payload = (x >> 13) & 0x3ffu;  // keep the top payload bits, as NumPy does
    if (payload == 0) payload = 1;          // ...but never turn a NaN into Inf
    return static_cast<uint16_t>(sign | 0x7c00u | payload);
  }
  // 65520 is halfway between the largest half (65504) and 65536; ties go to even, which is Inf.
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (x < 0x38800000u) {  // below 2^-14: a half subnormal or zero
    const uint32_t e = x >> 23;
    if (e < 102) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to zero
    const uint32_t m = (x & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24: from f32 mantissa units to 2^-24 units
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = (x >> 13) - (112u << 10);  // rebias exponent 127 -> 15
  const uint32_t rem = x & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // a carry into the exponent is correct
  return static_cast<uint16_t>(sign | r);
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t e = (bits >> 10) & 0x1fu;
  const uint32_t m = bits & 0x3ffu;
  if (e == 0) {
    const float magnitude = static_cast<float>(m) * 5.9604644775390625e-08f;  // m * 2^-24, exact
    return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));  // Inf, or NaN with payload
  return std::bit_cast<float>(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t f32_to_bf16(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  const uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);  // round half to even
  return static_cast<uint16_t>((x + rounding) >> 16);
}

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

}  // namespace bitnet
