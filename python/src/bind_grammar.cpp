// bitnet._core.Grammar: a parsed GBNF grammar (or a JSON schema converted to one) for constrained generation;
// bitnet.LlamaGrammar (python/bitnet/llama.py) is llama-cpp-python's name for it.
#include <bitnet/grammar.h>
#include <pybind11/stl.h>

#include "bindings.h"

namespace bitnet::python {

namespace py = pybind11;

namespace {
// pybind11 holds the grammar as shared_ptr<Grammar>; it is never changed after parsing.
std::shared_ptr<Grammar> held(std::shared_ptr<const Grammar> g) { return std::const_pointer_cast<Grammar>(std::move(g)); }
}  // namespace

void bind_grammar(py::module_& m) {
  py::class_<Grammar, std::shared_ptr<Grammar>>(m, "Grammar",
                                                 "A GBNF grammar (llama.cpp's language) that generated text must match")
      .def_static(
          "parse", [](const std::string& gbnf, const std::string& source) { return held(Grammar::parse(gbnf, source)); },
          py::arg("gbnf"), py::arg("source") = "grammar", "Parses GBNF text; errors name SOURCE:LINE:COLUMN")
      .def_static(
          "from_json_schema",
          [](const std::string& schema, const std::string& source) { return held(Grammar::from_json_schema(schema, source)); },
          py::arg("schema"), py::arg("source") = "json_schema",
          "The grammar of the JSON documents a JSON schema (its text) accepts")
      .def_static("any_json", [] { return held(Grammar::any_json()); }, "Any JSON object (response_format json_object)")
      .def_property_readonly("gbnf", &Grammar::gbnf, "The grammar's GBNF text (the converted one for a schema)")
      .def(
          "matches",
          [](const Grammar& g, const std::string& text) {
            // The matcher needs shared ownership; a copy of the rules is not needed, the object outlives the call.
            GrammarMatcher m(std::shared_ptr<const Grammar>(std::shared_ptr<const Grammar>{}, &g));
            return m.accept(text) && m.can_end();
          },
          py::arg("text"), "Whether TEXT (str) is a whole sentence of the grammar");
}

}  // namespace bitnet::python
