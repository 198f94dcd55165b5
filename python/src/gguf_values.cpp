// GGUF metadata values <-> Python objects (see gguf_values.h).
#include "gguf_values.h"

#include <bitnet/error.h>
#include <pybind11/numpy.h>

#include <bit>
#include <cstring>
#include <limits>

#include "numpy_util.h"

namespace bitnet::python {

namespace {

py::dtype scalar_dtype(GgufValueType t) {
  switch (t) {
    case GgufValueType::u8: return py::dtype::of<uint8_t>();
    case GgufValueType::i8: return py::dtype::of<int8_t>();
    case GgufValueType::u16: return py::dtype::of<uint16_t>();
    case GgufValueType::i16: return py::dtype::of<int16_t>();
    case GgufValueType::u32: return py::dtype::of<uint32_t>();
    case GgufValueType::i32: return py::dtype::of<int32_t>();
    case GgufValueType::u64: return py::dtype::of<uint64_t>();
    case GgufValueType::i64: return py::dtype::of<int64_t>();
    case GgufValueType::f32: return py::dtype::of<float>();
    case GgufValueType::f64: return py::dtype::of<double>();
    case GgufValueType::boolean: return py::dtype::of<bool>();
    default: fail("[gguf] {} is not a scalar type", gguf_value_type_name(t));
  }
}

// Name -> type for the explicit (value, "type") form.
GgufValueType parse_type(std::string_view name, std::string_view key) {
  static constexpr std::pair<std::string_view, GgufValueType> kTypes[] = {
      {"u8", GgufValueType::u8},   {"i8", GgufValueType::i8},   {"u16", GgufValueType::u16},
      {"i16", GgufValueType::i16}, {"u32", GgufValueType::u32}, {"i32", GgufValueType::i32},
      {"u64", GgufValueType::u64}, {"i64", GgufValueType::i64}, {"f32", GgufValueType::f32},
      {"f64", GgufValueType::f64}, {"bool", GgufValueType::boolean}, {"str", GgufValueType::string}};
  for (const auto& [n, t] : kTypes)
    if (n == name) return t;
  fail("[gguf] metadata '{}': unknown type '{}' (expected u8, i8, u16, i16, u32, i32, u64, i64, f32, f64, bool or str, "
       "with [] for an array)",
       key, name);
}

// A scalar of type t from a Python number, range-checked.
GgufValue typed_scalar(py::handle obj, GgufValueType t, std::string_view key) {
  if (t == GgufValueType::string) {
    BITNET_CHECK(py::isinstance<py::str>(obj), "[gguf] metadata '{}': a str value needs a Python str", key);
    return GgufValue::string(obj.cast<std::string>());
  }
  const auto o = py::reinterpret_borrow<py::object>(obj);
  if (t == GgufValueType::boolean) return GgufValue::boolean(py::bool_(o));
  if (t == GgufValueType::f32) return GgufValue::f32(obj.cast<float>());
  if (t == GgufValueType::f64) return GgufValue::f64(obj.cast<double>());
  BITNET_CHECK(py::isinstance<py::int_>(obj) || py::isinstance(obj, py::module_::import("numpy").attr("integer")),
               "[gguf] metadata '{}': type {} needs an integer, got {}", key, gguf_value_type_name(t),
               py::str(py::type::of(obj)).cast<std::string>());
  const auto big = py::int_(o);
  const bool negative = big < py::int_(0);
  auto check = [&](bool ok) {
    BITNET_CHECK(ok, "[gguf] metadata '{}': {} does not fit in {}", key, py::str(big).cast<std::string>(),
                 gguf_value_type_name(t));
  };
  if (t == GgufValueType::u64) {
    check(!negative);
    return GgufValue::u64(big.cast<uint64_t>());
  }
  int64_t v = 0;
  try {
    v = big.cast<int64_t>();
  } catch (const py::cast_error&) {
    check(false);
  }
  auto in = [&](int64_t lo, int64_t hi) { check(v >= lo && v <= hi); };
  switch (t) {
    case GgufValueType::u8: in(0, 255); return GgufValue::u8(static_cast<uint8_t>(v));
    case GgufValueType::i8: in(-128, 127); return GgufValue::i8(static_cast<int8_t>(v));
    case GgufValueType::u16: in(0, 65535); return GgufValue::u16(static_cast<uint16_t>(v));
    case GgufValueType::i16: in(-32768, 32767); return GgufValue::i16(static_cast<int16_t>(v));
    case GgufValueType::u32: in(0, 4294967295LL); return GgufValue::u32(static_cast<uint32_t>(v));
    case GgufValueType::i32: in(INT32_MIN, INT32_MAX); return GgufValue::i32(static_cast<int32_t>(v));
    default: return GgufValue::i64(v);
  }
}

// The type Python's own type implies: bool, int (u32 / i32 / i64 / u64 by range), float (f32), str.
GgufValueType implied_type(py::handle obj, std::string_view key) {
  if (py::isinstance<py::bool_>(obj)) return GgufValueType::boolean;
  if (py::isinstance<py::int_>(obj)) {
    const auto v = py::int_(py::reinterpret_borrow<py::object>(obj));
    if (v >= py::int_(0)) {
      if (v <= py::int_(4294967295LL)) return GgufValueType::u32;
      if (v <= py::int_(INT64_MAX)) return GgufValueType::i64;
      return GgufValueType::u64;
    }
    return v >= py::int_(INT32_MIN) ? GgufValueType::i32 : GgufValueType::i64;
  }
  if (py::isinstance<py::float_>(obj)) return GgufValueType::f32;
  if (py::isinstance<py::str>(obj)) return GgufValueType::string;
  fail("[gguf] metadata '{}': cannot store a {} (use bool, int, float, str, a list of them, a NumPy array, or "
       "(value, \"type\"))",
       key, py::str(py::type::of(obj)).cast<std::string>());
}

GgufValue array_value(py::handle seq, GgufValueType elem, std::string_view key) {
  std::vector<GgufValue> elements;
  for (py::handle item : seq) elements.push_back(typed_scalar(item, elem, key));
  if (elem == GgufValueType::string) {
    std::vector<std::string> strings;
    for (auto& e : elements) strings.push_back(std::move(e.str));
    return GgufValue::string_array(std::move(strings));
  }
  const size_t size = gguf_scalar_size(elem);
  GgufValue v;
  v.type = GgufValueType::array;
  v.elem_type = elem;
  v.count = elements.size();
  v.raw.resize(elements.size() * size);
  for (size_t i = 0; i < elements.size(); ++i) std::memcpy(v.raw.data() + i * size, &elements[i].bits, size);
  return v;
}

GgufValueType numpy_elem_type(const py::array& a, std::string_view key) {
  const char kind = a.dtype().kind();
  const auto size = a.itemsize();
  if (kind == 'b') return GgufValueType::boolean;
  if (kind == 'f' && size == 4) return GgufValueType::f32;
  if (kind == 'f' && size == 8) return GgufValueType::f64;
  if (kind == 'i' || kind == 'u') {
    const bool s = kind == 'i';
    switch (size) {
      case 1: return s ? GgufValueType::i8 : GgufValueType::u8;
      case 2: return s ? GgufValueType::i16 : GgufValueType::u16;
      case 4: return s ? GgufValueType::i32 : GgufValueType::u32;
      case 8: return s ? GgufValueType::i64 : GgufValueType::u64;
    }
  }
  fail("[gguf] metadata '{}': NumPy dtype {} has no GGUF array type", key, py::str(a.dtype()).cast<std::string>());
}

bool is_int_type(GgufValueType t) {
  return t == GgufValueType::u32 || t == GgufValueType::i32 || t == GgufValueType::i64 || t == GgufValueType::u64;
}

// A list's element type: all elements of one Python type; integers as i32 when they all fit (llama.cpp writes token
// ids and types as i32 arrays), else i64.
GgufValueType list_elem_type(py::handle seq, std::string_view key) {
  const GgufValueType first = implied_type(seq[py::int_(0)], key);
  bool fits_i32 = true;
  for (py::handle item : seq) {
    const GgufValueType t = implied_type(item, key);
    BITNET_CHECK(t == first || (is_int_type(t) && is_int_type(first)),
                 "[gguf] metadata '{}': list elements of different types ({} and {})", key,
                 gguf_value_type_name(first), gguf_value_type_name(t));
    const bool small_u32 =
        t == GgufValueType::u32 && py::int_(py::reinterpret_borrow<py::object>(item)) <= py::int_(INT32_MAX);
    fits_i32 = fits_i32 && (t == GgufValueType::i32 || small_u32);
  }
  if (!is_int_type(first)) return first;
  return fits_i32 ? GgufValueType::i32 : GgufValueType::i64;
}

}  // namespace

py::object gguf_value_to_python(const GgufValue& v, py::handle owner) {
  switch (v.type) {
    case GgufValueType::string: return py::str(v.str);  // Python str: invalid UTF-8 raises UnicodeDecodeError
    case GgufValueType::boolean: return py::bool_(v.bits != 0);
    case GgufValueType::f32:
    case GgufValueType::f64: return py::float_(*v.as_float());
    case GgufValueType::array:
      if (v.elem_type == GgufValueType::string) {
        py::list out;
        for (const std::string& s : v.strings) out.append(py::str(s));
        return out;
      }
      if (v.elem_type == GgufValueType::array) {
        py::list out;
        for (const GgufValue& e : v.arrays) out.append(gguf_value_to_python(e, owner));
        return out;
      }
      return view_array(scalar_dtype(v.elem_type), {static_cast<py::ssize_t>(v.count)}, {}, v.raw.data(), owner);
    case GgufValueType::u64: return py::int_(*v.as_uint());
    default: return py::int_(*v.as_int());
  }
}

GgufValue python_to_gguf_value(py::handle obj, std::string_view key) {
  if (py::isinstance<py::tuple>(obj) && py::len(obj) == 2 && py::isinstance<py::str>(obj[py::int_(1)])) {
    auto name = obj[py::int_(1)].cast<std::string>();
    py::handle value = obj[py::int_(0)];
    if (name.size() > 2 && name.ends_with("[]")) {
      BITNET_CHECK(py::isinstance<py::sequence>(value) && !py::isinstance<py::str>(value),
                   "[gguf] metadata '{}': type {} needs a list", key, name);
      return array_value(value, parse_type(name.substr(0, name.size() - 2), key), key);
    }
    return typed_scalar(value, parse_type(name, key), key);
  }
  if (py::isinstance<py::array>(obj)) {
    const auto a = py::array::ensure(obj, py::array::c_style);
    BITNET_CHECK(a.ndim() == 1, "[gguf] metadata '{}': arrays must be 1-D, got {} dimensions", key, a.ndim());
    const GgufValueType elem = numpy_elem_type(a, key);
    GgufValue v;
    v.type = GgufValueType::array;
    v.elem_type = elem;
    v.count = static_cast<uint64_t>(a.size());
    const auto* p = static_cast<const std::byte*>(a.data());
    v.raw.assign(p, p + a.nbytes());
    return v;
  }
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    BITNET_CHECK(py::len(obj) > 0, "[gguf] metadata '{}': an empty list has no element type; write (value, \"i32[]\") "
                 "or another typed form", key);
    return array_value(obj, list_elem_type(obj, key), key);
  }
  return typed_scalar(obj, implied_type(obj, key), key);
}

}  // namespace bitnet::python
