"""bitnet: BitNet b1.58 (ternary-weight LLMs) from Python.

- ``bitnet.Llama``: llama-cpp-python's API (create_completion, create_chat_completion, tokenize, ...).
- NumPy interop: quantizers, packings, the ternary / n-bit kernels, error metrics, GGUF and safetensors files.
- ``bitnet.torch``: ``BitLinear`` for PyTorch (STE training, inference through these kernels) and GGUF export.

Errors from the C++ library are raised as ``bitnet.BitnetError`` (a RuntimeError) with the library's message.
"""
from bitnet._core import (
    BitnetError,
    GgufFile,
    NbitMatrix,
    QuantError,
    QuantizedActivations,
    QuantizedWeights,
    SafetensorsFile,
    TernaryMatrix,
    TernaryWeights,
    __version__,
    convert_model,
    dequantize,
    dequantize_ternary,
    memory_stats,
    num_threads,
    pack_ternary,
    packing_bits_per_weight,
    quant_error,
    quantize_absmean,
    quantize_activations,
    quantize_ternary,
    quantize_weights,
    release_cached_memory,
    reset_peak_memory,
    set_num_threads,
    ternary_nbytes,
    unpack_ternary,
    write_gguf,
    write_safetensors,
)
from bitnet.llama import (
    LlamaCache,
    Llama,
    LlamaGrammar,
    LlamaRAMCache,
    LlamaState,
    LogitsProcessorList,
    StoppingCriteriaList,
)

__all__ = [
    "BitnetError", "GgufFile", "Llama", "LlamaCache", "LlamaGrammar", "LlamaRAMCache", "LlamaState",
    "LogitsProcessorList", "StoppingCriteriaList", "NbitMatrix", "QuantError", "QuantizedActivations", "QuantizedWeights",
    "SafetensorsFile", "TernaryMatrix", "TernaryWeights", "__version__", "convert_model", "dequantize",
    "dequantize_ternary", "memory_stats", "num_threads", "pack_ternary", "packing_bits_per_weight", "quant_error",
    "quantize_absmean", "quantize_activations", "quantize_ternary", "quantize_weights", "release_cached_memory",
    "reset_peak_memory", "set_num_threads", "ternary_nbytes", "unpack_ternary", "write_gguf", "write_safetensors",
]
