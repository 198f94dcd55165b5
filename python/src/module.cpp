// bitnet._core: the extension module behind the `bitnet` Python package (python/bitnet/).
#include <bitnet/version.h>

#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "bitnet C++ library bindings (use the `bitnet` package, not this module directly)";
  m.attr("__version__") = bitnet::kVersion;
  bitnet::python::bind_errors(m);  // first: the other registrations may raise it
  bitnet::python::bind_memory(m);
  bitnet::python::bind_quant(m);
  bitnet::python::bind_kernels(m);
  bitnet::python::bind_gguf(m);
  bitnet::python::bind_safetensors(m);
  bitnet::python::bind_model(m);
  bitnet::python::bind_stream(m);
  bitnet::python::bind_convert(m);
  bitnet::python::bind_grammar(m);
  bitnet::python::bind_sampler(m);
  bitnet::python::bind_hub(m);
}
