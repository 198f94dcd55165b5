// NumPy <-> Tensor conversions (see numpy_util.h).
#include "numpy_util.h"

namespace bitnet::python {

py::dtype numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return py::dtype::of<float>();
    case DType::f16: return py::dtype("float16");
    case DType::bf16: return py::dtype::of<uint16_t>();
    case DType::i8: return py::dtype::of<int8_t>();
    case DType::i32: return py::dtype::of<int32_t>();
    case DType::u8: return py::dtype::of<uint8_t>();
  }
  fail("[numpy] unknown dtype id {}", static_cast<int>(dtype));
}

py::array tensor_to_array(const Tensor& t) {
  BITNET_CHECK(t.defined(), "[numpy] the tensor is undefined");
  auto* owner = new Tensor(t);
  py::capsule base(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides;
  for (int64_t s : t.strides()) strides.push_back(static_cast<py::ssize_t>(s * t.element_size()));
  return view_array(numpy_dtype(t.dtype()), shape, strides, t.cdata(), base, !t.read_only());
}

Tensor wrap_float_array(const CArray<float>& a) {
  // Wrapped as writable even when the array is read-only (a view of a mapped file): the library takes its inputs
  // as const Tensor& and never writes to them, but some of its functions reach the data through the non-const
  // accessor of a local copy, which refuses read-only tensors.
  return Tensor::wrap(const_cast<float*>(a.data()), array_shape(a), DType::f32, /*read_only=*/false);
}

std::vector<int64_t> array_shape(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

void require_ndim(const py::array& a, int ndim, const char* op, const char* what) {
  BITNET_CHECK(a.ndim() == ndim, "[{}] {} must have {} dimension{}, got shape {}", op, what, ndim, ndim == 1 ? "" : "s",
               shape_str(array_shape(a)));
}

}  // namespace bitnet::python
