#pragma once
// NumPy <-> C++ conversions shared by the binding files. Arrays coming in are used in place when they are
// already C-contiguous with the right dtype (pybind11 converts, i.e. copies, otherwise); arrays going out view
// memory that something else keeps alive (a moved std::vector, a Tensor's storage, a mapped file), so results
// cost no copy either.
#include <bitnet/error.h>
#include <bitnet/tensor.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bitnet::python {

namespace py = pybind11;

// An input array of T, C-contiguous (converted when it is not).
template <class T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A NumPy array that owns `values` (moved into a capsule: no copy).
template <class T>
py::array owned_array(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* owner = new std::vector<T>(std::move(values));
  py::capsule base(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(std::move(shape), owner->data(), base);
}

// A read-only array over memory that `base` keeps alive (strides in bytes; empty = C order).
inline py::array view_array(const py::dtype& dtype, std::vector<py::ssize_t> shape, std::vector<py::ssize_t> strides,
                            const void* data, py::handle base, bool writeable = false) {
  py::array a = strides.empty() ? py::array(dtype, std::move(shape), data, base)
                                : py::array(dtype, std::move(shape), std::move(strides), data, base);
  if (!writeable) a.attr("flags").attr("writeable") = false;
  return a;
}

// The NumPy dtype of a tensor element type (bf16 has none in NumPy: its raw bits come out as uint16).
py::dtype numpy_dtype(DType dtype);
// A tensor as an array sharing its storage (read-only when the tensor is).
py::array tensor_to_array(const Tensor& t);
// A C-contiguous float32 array as a Tensor viewing its memory (the array must outlive the tensor; the library
// only reads it).
Tensor wrap_float_array(const CArray<float>& a);
// The array's shape as a vector.
std::vector<int64_t> array_shape(const py::array& a);

// Checks that `a` has `ndim` dimensions; `what` names the argument in the message.
void require_ndim(const py::array& a, int ndim, const char* op, const char* what);

}  // namespace bitnet::python
