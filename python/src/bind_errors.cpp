// bitnet::Error -> bitnet.BitnetError (a RuntimeError) carrying the C++ message unchanged, so a Python user
// reads exactly what the CLI prints.
#include <bitnet/error.h>

#include "bindings.h"

namespace bitnet::python {

void bind_errors(pybind11::module_& m) {
  pybind11::register_exception<Error>(m, "BitnetError", PyExc_RuntimeError);
}

}  // namespace bitnet::python
