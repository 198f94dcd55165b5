// bitnet._core.TextStream: a Python iterator over the text pieces of a generation running on a worker thread
// (text_stream.h). The GIL is released while the iterator waits and while close() joins the worker.
#include "bindings.h"
#include "generate_options.h"
#include "text_stream.h"

namespace bitnet::python {

namespace py = pybind11;

void bind_stream(py::module_& m) {
  py::class_<TextStream>(m, "TextStream")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__",
           [](TextStream& s) {
             std::optional<std::string> piece;
             {
               py::gil_scoped_release nogil;
               piece = s.next();
             }
             if (!piece) throw py::stop_iteration();
             return utf8_to_str(*piece);
           })
      .def(
          "close",
          [](TextStream& s) {
            py::gil_scoped_release nogil;
            s.close();
          },
          "Stops the generation (at its next piece of text) and waits for the worker thread.")
      .def_property_readonly(
          "result",
          [](TextStream& s) -> py::object {
            const auto r = s.result();
            if (!r) return py::none();
            return generate_result_to_dict(*r);
          },
          "The finished generation's summary, None while it runs.");
}

void add_stream_method(py::class_<LlamaCore, std::shared_ptr<LlamaCore>>& core) {
  core.def(
      "stream",
      [](std::shared_ptr<LlamaCore> c, const std::string& prompt, const py::dict& options) {
        return std::make_unique<TextStream>(std::move(c), prompt, generate_options_from_dict(options));
      },
      py::arg("prompt"), py::arg("options") = py::dict(),
      "Starts generating on a worker thread; iterate for the text pieces.");
}

}  // namespace bitnet::python
