#pragma once
// Element types and the scalar conversions between them.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bitnet {

// Plain element types. Packed ternary and block-quantized types join this list as formats land; the
// `block_elems` / `block_bytes` fields of DTypeInfo are there so a tensor of a packed type knows its size.
enum class DType : uint8_t { f32, f16, bf16, i8, i32, u8 };
inline constexpr int kDTypeCount = 6;

struct DTypeInfo {
  std::string_view name;
  int64_t block_elems;  // elements per storage block (1 for plain types)
  int64_t block_bytes;  // bytes per storage block
  bool is_floating;
  bool is_signed;
};

const DTypeInfo& dtype_info(DType dtype);
inline std::string_view dtype_name(DType dtype) { return dtype_info(dtype).name; }
inline size_t dtype_size(DType dtype) { return static_cast<size_t>(dtype_info(dtype).block_bytes); }
inline bool is_floating(DType dtype) { return dtype_info(dtype).is_floating; }
// Parses "f32", "float32", "f16", "float16", "bf16", "bfloat16", "i8", "int8", "i32", "int32", "u8", "uint8".
DType parse_dtype(std::string_view name);

// NumPy-like promotion for binary ops: any float wins over ints; f16 with bf16 gives f32; i8 with u8 gives
// i32 (NumPy would give int16, which we do not have).
DType promote_types(DType a, DType b);

// IEEE binary16 and bfloat16 <-> binary32, round-to-nearest-even, NaN stays NaN (quiet, sign kept),
// infinities and signed zeros preserved, f16 subnormals produced and consumed exactly.
uint16_t f32_to_f16(float value);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);
float bf16_to_f32(uint16_t bits);

}  // namespace bitnet
