// safetensors files from Python: a validating reader whose tensors are NumPy views of the mapped file (no copy)
// and a writer for NumPy arrays.
#include <bitnet/safetensors.h>

#include <pybind11/stl.h>

#include "bindings.h"
#include "numpy_util.h"

namespace bitnet::python {

namespace {

py::dtype st_numpy_dtype(StDType t) {
  switch (t) {
    case StDType::boolean: return py::dtype::of<bool>();
    case StDType::u8: return py::dtype::of<uint8_t>();
    case StDType::i8: return py::dtype::of<int8_t>();
    case StDType::i16: return py::dtype::of<int16_t>();
    case StDType::u16: return py::dtype::of<uint16_t>();
    case StDType::f16: return py::dtype("float16");
    case StDType::bf16: return py::dtype::of<uint16_t>();  // raw bits: NumPy has no bfloat16
    case StDType::i32: return py::dtype::of<int32_t>();
    case StDType::u32: return py::dtype::of<uint32_t>();
    case StDType::f32: return py::dtype::of<float>();
    case StDType::f64: return py::dtype::of<double>();
    case StDType::i64: return py::dtype::of<int64_t>();
    case StDType::u64: return py::dtype::of<uint64_t>();
  }
  fail("[safetensors] unknown dtype id {}", static_cast<int>(t));
}

StDType array_st_dtype(const py::array& a, const std::string& name) {
  const std::string dt = py::str(a.dtype()).cast<std::string>();
  static constexpr std::pair<std::string_view, StDType> kTypes[] = {
      {"bool", StDType::boolean}, {"uint8", StDType::u8},     {"int8", StDType::i8},     {"int16", StDType::i16},
      {"uint16", StDType::u16},   {"float16", StDType::f16},  {"bfloat16", StDType::bf16}, {"int32", StDType::i32},
      {"uint32", StDType::u32},   {"float32", StDType::f32},  {"float64", StDType::f64}, {"int64", StDType::i64},
      {"uint64", StDType::u64}};
  for (const auto& [n, t] : kTypes)
    if (n == dt) return t;
  fail("[safetensors writer] tensor '{}': NumPy dtype {} has no safetensors dtype", name, dt);
}

void write_safetensors(const std::string& path, const py::dict& tensors, const py::dict& metadata) {
  SafetensorsWriter w;
  for (auto [k, v] : metadata) w.set_metadata(k.cast<std::string>(), py::str(v).cast<std::string>());
  std::vector<py::array> arrays;
  for (auto [key, value] : tensors) {
    const auto name = key.cast<std::string>();
    py::array a = py::array::ensure(value, py::array::c_style);
    BITNET_CHECK(a, "[safetensors writer] tensor '{}': expected a NumPy array", name);
    w.add_tensor(name, array_st_dtype(a, name), array_shape(a));
    arrays.push_back(std::move(a));
  }
  py::gil_scoped_release nogil;  // `arrays` keeps the data alive
  w.write_header(path);
  for (const py::array& a : arrays) w.write({static_cast<const std::byte*>(a.data()), static_cast<size_t>(a.nbytes())});
  w.finish();
}

}  // namespace

void bind_safetensors(py::module_& m) {
  py::class_<SafetensorsFile>(m, "SafetensorsFile",
                              "A validated, memory-mapped .safetensors file; tensors are views (no copy).")
      .def(py::init([](const std::string& path) {
             py::gil_scoped_release nogil;
             return SafetensorsFile::open(path);
           }),
           py::arg("path"))
      .def_property_readonly("path", &SafetensorsFile::path)
      .def_property_readonly("metadata", [](const SafetensorsFile& f) { return py::cast(f.metadata()); })
      .def_property_readonly("tensors", [](const SafetensorsFile& f) {
        py::list out;
        for (const StTensorInfo& t : f.tensors()) {
          py::dict d;
          d["name"] = t.name;
          d["dtype"] = std::string(st_dtype_name(t.dtype));
          d["shape"] = py::tuple(py::cast(t.shape));
          d["nbytes"] = t.nbytes();
          out.append(d);
        }
        return out;
      }, "Tensor table in file order: name, dtype (\"BF16\"), shape, nbytes.")
      .def(
          "tensor",
          [](py::object self, const std::string& name) {
            const auto& f = self.cast<const SafetensorsFile&>();
            const StTensorInfo& t = f.tensor(name);
            return view_array(st_numpy_dtype(t.dtype), {t.shape.begin(), t.shape.end()}, {}, f.data(t).data(), self);
          },
          py::arg("name"), "A read-only view of the tensor in the mapped file (BF16 as uint16 bits).")
      .def("__contains__", [](const SafetensorsFile& f, const std::string& name) { return f.find(name) != nullptr; })
      .def("__repr__", [](const SafetensorsFile& f) {
        return fmt::format("SafetensorsFile('{}', {} tensors)", f.path(), f.tensors().size());
      });

  m.def("write_safetensors", &write_safetensors, py::arg("path"), py::arg("tensors"), py::arg("metadata") = py::dict(),
        "Writes a .safetensors file: tensors name -> NumPy array (bfloat16 from ml_dtypes too), metadata str -> str.");
}

}  // namespace bitnet::python
