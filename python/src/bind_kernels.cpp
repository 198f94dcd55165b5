// The inference kernels on NumPy arrays: per-token int8 activations, ternary and n-bit matrices in the kernels'
// layouts, and their products. The GIL is released while a kernel runs (it uses the library's thread pool).
#include <bitnet/nbit.h>
#include <bitnet/quant.h>
#include <bitnet/ternary.h>

#include <optional>

#include <pybind11/stl.h>

#include "bindings.h"
#include "numpy_util.h"
#include "pool_guard.h"

namespace bitnet::python {

namespace {

QuantizedActivations quantize_activations_arg(const CArray<float>& x, std::optional<CArray<float>> norm_weight,
                                              float eps) {
  BITNET_CHECK(x.ndim() == 1 || x.ndim() == 2, "[quantize_activations] x must be [k] or [tokens, k], got shape {}",
               shape_str(array_shape(x)));
  const int64_t tokens = x.ndim() == 2 ? x.shape(0) : 1;
  const int64_t k = x.shape(x.ndim() - 1);
  if (norm_weight)
    BITNET_CHECK(norm_weight->ndim() == 1 && norm_weight->shape(0) == k,
                 "[quantize_activations] norm_weight must have shape [{}], got {}", k,
                 shape_str(array_shape(*norm_weight)));
  QuantizedActivations q;
  py::gil_scoped_release nogil;
  if (norm_weight)
    rms_norm_quantize_activations(x.data(), norm_weight->data(), eps, tokens, k, k, q);
  else
    quantize_activations(x.data(), tokens, k, k, q);
  return q;
}

// y [tokens, rows] from a kernel that writes rows outputs per token.
template <class Kernel>
py::array matmul_result(int64_t tokens, int64_t rows, Kernel&& kernel) {
  std::vector<float> y(static_cast<size_t>(tokens * rows));
  {
    py::gil_scoped_release nogil;
    PoolUse use;
    kernel(y.data());
  }
  return owned_array(std::move(y), {tokens, rows});
}

}  // namespace

void bind_kernels(py::module_& m) {
  py::class_<QuantizedActivations>(m, "QuantizedActivations",
                                   "Per-token int8 activations: q = round(x * 127 / max|x|), rows padded to 256.")
      .def_property_readonly("q", [](py::object self) {
        const auto& a = self.cast<const QuantizedActivations&>();
        // [tokens, k] over the padded rows: a strided view, the padding left out.
        return view_array(py::dtype::of<int8_t>(), {a.tokens(), a.k()}, {a.k_pad(), 1}, a.row(0), self);
      })
      .def_property_readonly("dequant", [](py::object self) {
        const auto& a = self.cast<const QuantizedActivations&>();
        return view_array(py::dtype::of<float>(), {a.tokens()}, {}, a.dequant(), self);
      })
      .def_property_readonly("sums", [](py::object self) {
        const auto& a = self.cast<const QuantizedActivations&>();
        return view_array(py::dtype::of<int32_t>(), {a.tokens()}, {}, a.sums(), self);
      })
      .def_property_readonly("tokens", &QuantizedActivations::tokens)
      .def_property_readonly("k", &QuantizedActivations::k)
      .def_property_readonly("k_pad", &QuantizedActivations::k_pad);
  m.def("quantize_activations", &quantize_activations_arg, py::arg("x"), py::arg("norm_weight") = py::none(),
        py::arg("eps") = 1e-5f,
        "Per-token absmax int8 quantization of x [tokens, k]; with norm_weight, fused with RMSNorm (gain "
        "norm_weight, epsilon eps).");

  py::class_<TernaryMatrix>(m, "TernaryMatrix",
                            "Ternary weights packed once into one of the kernels' layouts: 2bit, or base3 (1.6 bits "
                            "per weight); both give the same results.")
      .def_static(
          "pack",
          [](const CArray<int8_t>& values, float scale, const std::string& packing) {
            require_ndim(values, 2, "ternary", "values");
            const TernaryPacking layout = parse_ternary_packing(packing);
            return TernaryMatrix::pack(values.data(), values.shape(0), values.shape(1), scale, layout);
          },
          py::arg("values"), py::arg("scale") = 1.0f, py::arg("packing") = "2bit",
          "From int8 values [rows, cols] in {-1, 0, 1} and a scale; packing \"2bit\" or \"base3\".")
      .def_static(
          "from_weights", [](const TernaryWeights& w) { return TernaryMatrix::pack(w); }, py::arg("weights"),
          "From quantize_ternary's result (per-tensor or per-channel scales).")
      .def_static(
          "quantize",
          [](const CArray<float>& w) {
            const Tensor t = wrap_float_array(w);
            py::gil_scoped_release nogil;
            return TernaryMatrix::quantize(t);
          },
          py::arg("weights"), "Absmean-quantizes float weights [rows, cols] (per tensor) and packs them.")
      .def_property_readonly("rows", &TernaryMatrix::rows)
      .def_property_readonly("cols", &TernaryMatrix::cols)
      .def_property_readonly("scale", &TernaryMatrix::scale)
      .def_property_readonly("row_scales", [](const TernaryMatrix& w) {
        std::vector<float> s = w.row_scales();
        const auto n = static_cast<py::ssize_t>(s.size());
        return owned_array(std::move(s), {n});
      })
      .def_property_readonly("nbytes", &TernaryMatrix::bytes)
      .def_property_readonly("packing",
                             [](const TernaryMatrix& w) { return std::string(ternary_packing_name(w.packing())); })
      .def("unpack", [](const TernaryMatrix& w) { return owned_array(w.unpack(), {w.rows(), w.cols()}); },
           "The int8 values [rows, cols] back.")
      .def(
          "__call__",
          [](const TernaryMatrix& w, const CArray<float>& x) {
            const Tensor t = wrap_float_array(x);
            Tensor y;
            {
              py::gil_scoped_release nogil;
              PoolUse use;
              y = bitlinear(t, w);
            }
            return tensor_to_array(y);
          },
          py::arg("x"), "BitLinear inference: x [..., cols] quantized per token to int8, times W: [..., rows].")
      .def(
          "matmul",
          [](const TernaryMatrix& w, const QuantizedActivations& x) {
            return matmul_result(x.tokens(), w.rows(),
                                 [&](float* y) { ternary_matmul(w, x, y, w.rows()); });
          },
          py::arg("x"), "ternary_matmul: int8 activations [tokens, cols] -> float32 [tokens, rows].")
      .def("__repr__", [](const TernaryMatrix& w) {
        return fmt::format("TernaryMatrix([{}, {}], scale={:g}{})", w.rows(), w.cols(), w.scale(),
                           w.row_scales().empty() ? "" : ", per-channel");
      });

  py::class_<NbitMatrix>(m, "NbitMatrix", "1/2/4/8-bit weights packed for the n-bit kernels.")
      .def_static("pack", &NbitMatrix::pack, py::arg("weights"), "From quantize_weights' result.")
      .def_property_readonly("rows", &NbitMatrix::rows)
      .def_property_readonly("cols", &NbitMatrix::cols)
      .def_property_readonly("bits", &NbitMatrix::bits)
      .def_property_readonly("nbytes", &NbitMatrix::bytes)
      .def("unpack_codes", [](const NbitMatrix& w) { return owned_array(w.unpack_codes(), {w.rows(), w.cols()}); })
      .def(
          "matmul",
          [](const NbitMatrix& w, const QuantizedActivations& x) {
            return matmul_result(x.tokens(), w.rows(), [&](float* y) { nbit_matmul(w, x, y, w.rows()); });
          },
          py::arg("x"), "nbit_matmul: int8 activations [tokens, cols] -> float32 [tokens, rows].")
      .def("__repr__", [](const NbitMatrix& w) {
        return fmt::format("NbitMatrix([{}, {}], {} bit)", w.rows(), w.cols(), w.bits());
      });
}

}  // namespace bitnet::python
