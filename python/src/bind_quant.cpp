// Quantizers, dequantizers, packings and error metrics (quant.h, ternary_formats.h) on NumPy arrays.
#include <bitnet/quant.h>
#include <bitnet/ternary_formats.h>

#include "bindings.h"
#include "numpy_util.h"
#include "parse_names.h"

namespace bitnet::python {

namespace {

// A 2-D float32 matrix argument: its pointer and shape.
struct Matrix {
  const float* data;
  int64_t rows, cols;
};
Matrix matrix_arg(const CArray<float>& a, const char* op) {
  require_ndim(a, 2, op, "weights");
  return {a.data(), a.shape(0), a.shape(1)};
}

// Read-only array views of a struct's vectors; `self` (the Python object holding the struct) keeps them alive.
template <class T>
py::array member_view(const std::vector<T>& v, std::vector<py::ssize_t> shape, py::handle self) {
  return view_array(py::dtype::of<T>(), std::move(shape), {}, v.data(), self);
}

py::tuple ternary_tensor_result(TernaryTensor&& t) {
  const float scale = t.scale;
  return py::make_tuple(owned_array(std::move(t.values), {t.rows, t.cols}), scale);
}

std::span<const int8_t> int8_values(const CArray<int8_t>& v, const char* op) {
  require_ndim(v, 2, op, "values");
  return {v.data(), static_cast<size_t>(v.size())};
}

}  // namespace

void bind_quant(py::module_& m) {
  py::class_<TernaryWeights>(m, "TernaryWeights", "Absmean ternary weights: values in {-1, 0, 1} and scales.")
      .def_property_readonly("values", [](py::object self) {
        const auto& w = self.cast<const TernaryWeights&>();
        return member_view(w.values, {w.rows, w.cols}, self);
      })
      .def_property_readonly("scales", [](py::object self) {
        const auto& w = self.cast<const TernaryWeights&>();
        return member_view(w.scales, {static_cast<py::ssize_t>(w.scales.size())}, self);
      })
      .def_property_readonly("granularity",
                             [](const TernaryWeights& w) { return std::string(granularity_name(w.granularity)); })
      .def_readonly("group_size", &TernaryWeights::group_size)
      .def_readonly("rows", &TernaryWeights::rows)
      .def_readonly("cols", &TernaryWeights::cols)
      .def("__repr__", [](const TernaryWeights& w) {
        return fmt::format("TernaryWeights([{}, {}], {}, {} scale{})", w.rows, w.cols, granularity_name(w.granularity),
                           w.scales.size(), w.scales.size() == 1 ? "" : "s");
      });

  py::class_<QuantizedWeights>(m, "QuantizedWeights", "1/2/4/8-bit codes with value = (code - zero_point) * scale.")
      .def_property_readonly("codes", [](py::object self) {
        const auto& q = self.cast<const QuantizedWeights&>();
        return member_view(q.codes, {q.rows, q.cols}, self);
      })
      .def_property_readonly("scales", [](py::object self) {
        const auto& q = self.cast<const QuantizedWeights&>();
        return member_view(q.scales, {static_cast<py::ssize_t>(q.scales.size())}, self);
      })
      .def_property_readonly("zero_points", [](py::object self) {
        const auto& q = self.cast<const QuantizedWeights&>();
        return member_view(q.zero_points, {static_cast<py::ssize_t>(q.zero_points.size())}, self);
      })
      .def_property_readonly("centers", [](py::object self) {
        const auto& q = self.cast<const QuantizedWeights&>();
        return member_view(q.centers, {static_cast<py::ssize_t>(q.centers.size())}, self);
      })
      .def_property_readonly("bits", [](const QuantizedWeights& q) { return q.spec.bits; })
      .def_property_readonly("symmetric", [](const QuantizedWeights& q) { return q.spec.symmetric; })
      .def_property_readonly(
          "granularity", [](const QuantizedWeights& q) { return std::string(granularity_name(q.spec.granularity)); })
      .def_property_readonly("group_size", [](const QuantizedWeights& q) { return q.spec.group_size; })
      .def_readonly("rows", &QuantizedWeights::rows)
      .def_readonly("cols", &QuantizedWeights::cols)
      .def("__repr__", [](const QuantizedWeights& q) {
        return fmt::format("QuantizedWeights([{}, {}], {} bit, {}, {})", q.rows, q.cols, q.spec.bits,
                           q.spec.symmetric ? "symmetric" : "asymmetric", granularity_name(q.spec.granularity));
      });

  m.def(
      "quantize_ternary",
      [](const CArray<float>& w, std::string_view granularity, int64_t group_size) {
        const Matrix mat = matrix_arg(w, "quantize_ternary");
        const Granularity g = parse_granularity(granularity);
        py::gil_scoped_release nogil;
        return quantize_ternary(mat.data, mat.rows, mat.cols, g, group_size);
      },
      py::arg("weights"), py::arg("granularity") = "per_tensor", py::arg("group_size") = 0,
      "Absmean ternary quantization of float weights [rows, cols] (per tensor, channel or group).");
  m.def(
      "quantize_weights",
      [](const CArray<float>& w, int bits, bool symmetric, std::string_view granularity, int64_t group_size) {
        const Matrix mat = matrix_arg(w, "quantize_weights");
        const QuantSpec spec{bits, symmetric, parse_granularity(granularity), group_size};
        py::gil_scoped_release nogil;
        return quantize_weights(mat.data, mat.rows, mat.cols, spec);
      },
      py::arg("weights"), py::arg("bits") = 8, py::arg("symmetric") = true, py::arg("granularity") = "per_tensor",
      py::arg("group_size") = 0, "1/2/4/8-bit quantization of float weights [rows, cols].");
  m.def("dequantize", [](const TernaryWeights& q) { return tensor_to_array(dequantize(q)); }, py::arg("q"));
  m.def("dequantize", [](const QuantizedWeights& q) { return tensor_to_array(dequantize(q)); }, py::arg("q"),
        "Float32 [rows, cols] weights back from TernaryWeights or QuantizedWeights.");

  py::class_<QuantError>(m, "QuantError", "Error of an approximation x_hat of x.")
      .def_readonly("mse", &QuantError::mse)
      .def_readonly("sqnr_db", &QuantError::sqnr_db)
      .def_readonly("cosine", &QuantError::cosine)
      .def_readonly("relative_error", &QuantError::relative_error)
      .def("__repr__", [](const QuantError& e) {
        return fmt::format("QuantError(mse={:g}, sqnr_db={:g}, cosine={:g}, relative_error={:g})", e.mse, e.sqnr_db,
                           e.cosine, e.relative_error);
      });
  m.def(
      "quant_error",
      [](const CArray<float>& x, const CArray<float>& x_hat) {
        return quant_error(wrap_float_array(x), wrap_float_array(x_hat));
      },
      py::arg("x"), py::arg("x_hat"), "MSE, SQNR (dB), cosine similarity and relative error of x_hat against x.");
  m.def(
      "packing_bits_per_weight",
      [](int64_t cols) {
        py::dict d;
        for (const PackingInfo& p : packing_bits_per_weight(cols)) d[py::str(std::string(p.name))] = p.bits_per_weight;
        return d;
      },
      py::arg("cols"), "Bits per weight of each storage format (scales included) for rows of `cols` weights.");

  // File layouts of ternary weights (byte-exact, both ways).
  m.def(
      "ternary_nbytes",
      [](std::string_view format, int64_t rows, int64_t cols) {
        return ternary_nbytes(parse_ternary_format(format), rows, cols);
      },
      py::arg("format"), py::arg("rows"), py::arg("cols"));
  m.def(
      "pack_ternary",
      [](const CArray<int8_t>& values, std::string_view format, float scale) {
        const auto v = int8_values(values, "pack_ternary");
        const TernaryFormat f = parse_ternary_format(format);
        std::vector<uint8_t> bytes = pack_ternary(f, v, values.shape(0), values.shape(1), scale);
        const auto n = static_cast<py::ssize_t>(bytes.size());
        return owned_array(std::move(bytes), {n});
      },
      py::arg("values"), py::arg("format"), py::arg("scale") = 1.0f,
      "Packs int8 values [rows, cols] in {-1, 0, 1} into a file layout: hf_u8, tq1_0, tq2_0 or i2_s.");
  m.def(
      "unpack_ternary",
      [](const CArray<uint8_t>& data, std::string_view format, int64_t rows, int64_t cols) {
        const TernaryFormat f = parse_ternary_format(format);
        return ternary_tensor_result(unpack_ternary(f, {data.data(), static_cast<size_t>(data.size())}, rows, cols));
      },
      py::arg("data"), py::arg("format"), py::arg("rows"), py::arg("cols"),
      "File layout -> (int8 values [rows, cols], scale); invalid codes and disagreeing block scales raise.");
  m.def(
      "dequantize_ternary",
      [](const CArray<uint8_t>& data, std::string_view format, int64_t rows, int64_t cols) {
        const TernaryFormat f = parse_ternary_format(format);
        std::vector<float> w = dequantize_ternary(f, {data.data(), static_cast<size_t>(data.size())}, rows, cols);
        return owned_array(std::move(w), {rows, cols});
      },
      py::arg("data"), py::arg("format"), py::arg("rows"), py::arg("cols"),
      "File layout -> float32 [rows, cols] (value times its block's scale).");
  m.def(
      "quantize_absmean",
      [](const CArray<float>& w) {
        const Matrix mat = matrix_arg(w, "quantize_absmean");
        return ternary_tensor_result(
            quantize_absmean({mat.data, static_cast<size_t>(mat.rows * mat.cols)}, mat.rows, mat.cols));
      },
      py::arg("weights"),
      "The reference absmean ternarization (transformers / bitnet.cpp convert): (int8 values, scale).");
}

}  // namespace bitnet::python
