// GGUF files from Python: a reader whose tensors are NumPy views of the mapped file (no copy) and a writer for
// NumPy arrays and packed bytes.
#include <bitnet/gguf.h>

#include <pybind11/stl.h>

#include "bindings.h"
#include "gguf_values.h"
#include "numpy_util.h"

namespace bitnet::python {

namespace {

// NumPy dtype of a plain GGUF tensor type; nullopt for block-packed types (returned as raw bytes).
std::optional<py::dtype> plain_dtype(GgmlType t) {
  switch (t) {
    case GgmlType::f32: return py::dtype::of<float>();
    case GgmlType::f16: return py::dtype("float16");
    case GgmlType::bf16: return py::dtype::of<uint16_t>();  // raw bits: NumPy has no bfloat16
    case GgmlType::f64: return py::dtype::of<double>();
    case GgmlType::i8: return py::dtype::of<int8_t>();
    case GgmlType::i16: return py::dtype::of<int16_t>();
    case GgmlType::i32: return py::dtype::of<int32_t>();
    case GgmlType::i64: return py::dtype::of<int64_t>();
    default: return std::nullopt;
  }
}

// GGUF type of a NumPy array (bfloat16 from ml_dtypes included).
GgmlType array_ggml_type(const py::array& a, const std::string& name) {
  const std::string dt = py::str(a.dtype()).cast<std::string>();
  if (dt == "float32") return GgmlType::f32;
  if (dt == "float16") return GgmlType::f16;
  if (dt == "bfloat16") return GgmlType::bf16;
  if (dt == "float64") return GgmlType::f64;
  if (dt == "int8") return GgmlType::i8;
  if (dt == "int16") return GgmlType::i16;
  if (dt == "int32") return GgmlType::i32;
  if (dt == "int64") return GgmlType::i64;
  fail("[gguf writer] tensor '{}': NumPy dtype {} has no GGUF type (float32, float16, bfloat16, float64, int8, int16, "
       "int32, int64; packed data as (uint8 array, \"TQ2_0\", shape))",
       name, dt);
}

py::dict tensor_info_dict(const GgufTensorInfo& t) {
  py::dict d;
  d["name"] = t.name;
  d["type"] = std::string(ggml_type_name(t.type));
  d["shape"] = py::tuple(py::cast(t.torch_shape()));
  d["dims"] = py::tuple(py::cast(t.dims));
  d["offset"] = t.offset;
  d["nbytes"] = t.nbytes;
  return d;
}

// One tensor to write: its bytes (kept alive by `array`), dims in GGUF order and type.
struct PendingTensor {
  std::string name;
  py::array array;
  std::vector<int64_t> dims;
  GgmlType type;
};

PendingTensor pending_tensor(const std::string& name, py::handle value) {
  PendingTensor p{name, {}, {}, GgmlType::f32};
  std::vector<int64_t> shape;
  if (py::isinstance<py::tuple>(value)) {
    BITNET_CHECK(py::len(value) == 3, "[gguf writer] tensor '{}': a packed tensor is (uint8 array, type, shape)", name);
    p.array = py::array::ensure(value[py::int_(0)], py::array::c_style);
    BITNET_CHECK(p.array && p.array.dtype().kind() == 'u' && p.array.itemsize() == 1,
                 "[gguf writer] tensor '{}': packed data must be a uint8 array", name);
    p.type = parse_ggml_type(value[py::int_(1)].cast<std::string>());
    shape = value[py::int_(2)].cast<std::vector<int64_t>>();
  } else {
    p.array = py::array::ensure(value, py::array::c_style);
    BITNET_CHECK(p.array, "[gguf writer] tensor '{}': expected a NumPy array or (uint8 array, type, shape)", name);
    p.type = array_ggml_type(p.array, name);
    shape = array_shape(p.array);
    if (shape.empty()) shape = {1};  // GGUF has no 0-d tensors
  }
  p.dims.assign(shape.rbegin(), shape.rend());
  return p;
}

void write_gguf(const std::string& path, const py::dict& tensors, const py::dict& metadata, uint32_t alignment) {
  GgufWriter w(alignment);
  for (auto [key, value] : metadata) {
    const auto k = key.cast<std::string>();
    w.set(k, python_to_gguf_value(value, k));
  }
  std::vector<PendingTensor> pending;
  for (auto [key, value] : tensors) {
    pending.push_back(pending_tensor(key.cast<std::string>(), value));
    PendingTensor& p = pending.back();
    const uint64_t need = w.add_tensor(p.name, p.dims, p.type);
    BITNET_CHECK(need == static_cast<uint64_t>(p.array.nbytes()),
                 "[gguf writer] tensor '{}': {} {} needs {} bytes, the array has {}", p.name, ggml_type_name(p.type),
                 shape_str(std::vector<int64_t>(p.dims.rbegin(), p.dims.rend())), need, p.array.nbytes());
  }
  py::gil_scoped_release nogil;  // the arrays stay referenced by `pending`
  w.write_header(path);
  for (const PendingTensor& p : pending)
    w.write_tensor({static_cast<const std::byte*>(p.array.data()), static_cast<size_t>(p.array.nbytes())});
  w.finish();
}

}  // namespace

void bind_gguf(py::module_& m) {
  py::class_<GgufFile>(m, "GgufFile", "A validated, memory-mapped GGUF file; tensors are views (no copy).")
      .def(py::init([](const std::string& path) {
             py::gil_scoped_release nogil;
             return GgufFile::open(path);
           }),
           py::arg("path"))
      .def_property_readonly("path", &GgufFile::path)
      .def_property_readonly("version", &GgufFile::version)
      .def_property_readonly("alignment", &GgufFile::alignment)
      .def_property_readonly("architecture", &GgufFile::architecture)
      .def_property_readonly("detection_note", &GgufFile::detection_note)
      .def_property_readonly("metadata", [](py::object self) {
        const auto& f = self.cast<const GgufFile&>();
        py::dict d;
        for (const auto& [k, v] : f.metadata()) d[py::str(k)] = gguf_value_to_python(v, self);
        return d;
      }, "Every metadata key -> int, float, bool, str, NumPy array (numbers) or list (strings, nested arrays).")
      .def_property_readonly("tensors", [](const GgufFile& f) {
        py::list out;
        for (const GgufTensorInfo& t : f.tensors()) out.append(tensor_info_dict(t));
        return out;
      }, "Tensor table: name, type, shape (PyTorch order), dims (GGUF order), offset, nbytes.")
      .def(
          "tensor",
          [](py::object self, const std::string& name) {
            const auto& f = self.cast<const GgufFile&>();
            const GgufTensorInfo& t = f.tensor(name);
            const auto bytes = f.tensor_data(t);
            if (const auto dtype = plain_dtype(t.type)) {
              const auto shape = t.torch_shape();
              return view_array(*dtype, {shape.begin(), shape.end()}, {}, bytes.data(), self);
            }
            const auto n = static_cast<py::ssize_t>(bytes.size());
            return view_array(py::dtype::of<uint8_t>(), {n}, {}, bytes.data(), self);
          },
          py::arg("name"),
          "A read-only view of the tensor's bytes in the mapped file: typed [PyTorch shape] for plain types (BF16 as "
          "uint16 bits), raw uint8 for packed types (unpack with unpack_ternary).")
      .def("__contains__", [](const GgufFile& f, const std::string& name) { return f.find_tensor(name) != nullptr; })
      .def("__repr__", [](const GgufFile& f) {
        return fmt::format("GgufFile('{}', v{}, {} keys, {} tensors)", f.path(), f.version(), f.metadata().size(),
                           f.tensors().size());
      });

  m.def("write_gguf", &write_gguf, py::arg("path"), py::arg("tensors"), py::arg("metadata") = py::dict(),
        py::arg("alignment") = 32,
        "Writes a GGUF v3 file. tensors: name -> NumPy array (type from its dtype) or (uint8 bytes, type name, "
        "shape) for packed types; metadata: key -> value (see bitnet.GgufFile.metadata; (value, \"u8\") forces a "
        "type).");
}

}  // namespace bitnet::python
