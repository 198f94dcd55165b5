#pragma once
// GGUF metadata values <-> Python objects. Reading: integers and bools -> int/bool, floats -> float, strings ->
// str, arrays of numbers -> NumPy arrays, arrays of strings -> list[str], nested arrays -> lists. Writing: the
// inverse, with an explicit type when Python's own is ambiguous: (value, "u8" | "i8" | "u16" | "i16" | "u32" |
// "i32" | "u64" | "i64" | "f32" | "f64" | "bool" | "str"), and "u8[]" ... "str[]" for arrays.
#include <bitnet/gguf.h>
#include <pybind11/pybind11.h>

namespace bitnet::python {

// `owner` keeps the value's bytes alive for the arrays returned (they are views, not copies).
pybind11::object gguf_value_to_python(const GgufValue& v, pybind11::handle owner);
// `key` names the value in error messages.
GgufValue python_to_gguf_value(pybind11::handle obj, std::string_view key);

}  // namespace bitnet::python
