#pragma once
// One registration function per binding file; module.cpp calls them in order.
#include <pybind11/pybind11.h>

#include <memory>

namespace bitnet::python {
class LlamaCore;
void bind_errors(pybind11::module_& m);
void bind_memory(pybind11::module_& m);
void bind_quant(pybind11::module_& m);
void bind_kernels(pybind11::module_& m);
void bind_gguf(pybind11::module_& m);
void bind_safetensors(pybind11::module_& m);
void bind_model(pybind11::module_& m);
void bind_stream(pybind11::module_& m);
void bind_convert(pybind11::module_& m);
void bind_grammar(pybind11::module_& m);
void bind_sampler(pybind11::module_& m);
void bind_hub(pybind11::module_& m);
// LlamaCore.stream(), defined in bind_stream.cpp beside the TextStream it returns.
void add_stream_method(pybind11::class_<LlamaCore, std::shared_ptr<LlamaCore>>& core);
}  // namespace bitnet::python
