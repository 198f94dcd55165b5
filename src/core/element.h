#pragma once
// Internal: reading and writing one element of any dtype through double (the slow, general path).
#include <bitnet/dtype.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

namespace bitnet::detail {

template <class T>
inline T load_raw(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <class T>
inline void store_raw(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

inline double load_element(const std::byte* p, DType dtype) {
  switch (dtype) {
    case DType::f32: return load_raw<float>(p);
    case DType::f16: return f16_to_f32(load_raw<uint16_t>(p));
    case DType::bf16: return bf16_to_f32(load_raw<uint16_t>(p));
    case DType::i8: return load_raw<int8_t>(p);
    case DType::i32: return load_raw<int32_t>(p);
    case DType::u8: return load_raw<uint8_t>(p);
  }
  return 0;
}

// Float to integer: truncation toward zero, saturating at the type's range, NaN -> 0.
template <class I>
inline I saturate_cast(double v) {
  if (std::isnan(v)) return 0;
  if (v <= static_cast<double>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  if (v >= static_cast<double>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}

inline void store_element(std::byte* p, DType dtype, double v) {
  switch (dtype) {
    case DType::f32: store_raw<float>(p, static_cast<float>(v)); break;
    case DType::f16: store_raw<uint16_t>(p, f32_to_f16(static_cast<float>(v))); break;
    case DType::bf16: store_raw<uint16_t>(p, f32_to_bf16(static_cast<float>(v))); break;
    case DType::i8: store_raw<int8_t>(p, saturate_cast<int8_t>(v)); break;
    case DType::i32: store_raw<int32_t>(p, saturate_cast<int32_t>(v)); break;
    case DType::u8: store_raw<uint8_t>(p, saturate_cast<uint8_t>(v)); break;
  }
}

// Integer arithmetic results wrap like NumPy's fixed-width integers instead of saturating.
inline void store_wrapped(std::byte* p, DType dtype, double v) {
  if (is_floating(dtype) || std::isnan(v) || std::fabs(v) > 9.0e18) return store_element(p, dtype, v);
  const auto i = static_cast<int64_t>(v);
  switch (dtype) {
    case DType::i8: store_raw<int8_t>(p, static_cast<int8_t>(i)); break;
    case DType::i32: store_raw<int32_t>(p, static_cast<int32_t>(i)); break;
    case DType::u8: store_raw<uint8_t>(p, static_cast<uint8_t>(i)); break;
    default: break;
  }
}

}  // namespace bitnet::detail
