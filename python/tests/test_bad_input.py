"""Bad input never crashes the interpreter: every call below raises a Python exception (BitnetError with the
library's message, or TypeError / ValueError from the argument conversion)."""
import numpy as np
import pytest

import bitnet

F = np.float32
EMPTY = np.zeros((0, 0), F)

CASES = [
    ("ternary of empty", lambda: bitnet.quantize_ternary(EMPTY)),
    ("ternary of 3-D", lambda: bitnet.quantize_ternary(np.ones((2, 2, 2), F))),
    ("ternary of None", lambda: bitnet.quantize_ternary(None)),
    ("ternary of text", lambda: bitnet.quantize_ternary("weights")),
    ("group of 0", lambda: bitnet.quantize_ternary(np.ones((2, 8), F), "per_group", 0)),
    ("weights of empty", lambda: bitnet.quantize_weights(EMPTY, bits=4)),
    ("1-bit asymmetric", lambda: bitnet.quantize_weights(np.ones((2, 8), F), bits=1, symmetric=False)),
    ("unpack, negative rows", lambda: bitnet.unpack_ternary(np.zeros(66, np.uint8), "tq2_0", -1, 256)),
    ("unpack, huge shape", lambda: bitnet.unpack_ternary(np.zeros(66, np.uint8), "tq2_0", 2**40, 2**40)),
    ("dequantize_ternary, short", lambda: bitnet.dequantize_ternary(np.zeros(1, np.uint8), "i2_s", 4, 128)),
    ("pack, 1-D", lambda: bitnet.pack_ternary(np.zeros(256, np.int8), "tq2_0")),
    ("matrix of empty", lambda: bitnet.TernaryMatrix.pack(np.zeros((0, 0), np.int8))),
    ("matrix, nan scale", lambda: bitnet.TernaryMatrix.pack(np.zeros((1, 256), np.int8), float("nan"))),
    ("per-group to kernel", lambda: bitnet.TernaryMatrix.from_weights(
        bitnet.quantize_ternary(np.ones((2, 256), F), "per_group", 128))),
    ("activations 3-D", lambda: bitnet.quantize_activations(np.ones((1, 1, 8), F))),
    ("activations empty row", lambda: bitnet.quantize_activations(np.ones((1, 0), F))),
    ("nbit, group not /64", lambda: bitnet.NbitMatrix.pack(
        bitnet.quantize_weights(np.ones((2, 96), F), bits=4, granularity="per_group", group_size=32))),
    ("gguf of a directory", lambda: bitnet.GgufFile("/")),
    ("write to a directory", lambda: bitnet.write_gguf("/", {})),
    ("write, object array", lambda: bitnet.write_gguf("/tmp/x.gguf", {"t": np.array([object()])})),
    ("write, bad packed tuple", lambda: bitnet.write_gguf("/tmp/x.gguf", {"t": (np.zeros(66, np.uint8), "TQ9")})),
    ("write, unknown type", lambda: bitnet.write_gguf("/tmp/x.gguf", {"t": (np.zeros(66, np.uint8), "Q9_9", (256,))})),
    ("write, empty list", lambda: bitnet.write_gguf("/tmp/x.gguf", {}, {"k": []})),
    ("write, mixed list", lambda: bitnet.write_gguf("/tmp/x.gguf", {}, {"k": [1, "a"]})),
    ("write, dict value", lambda: bitnet.write_gguf("/tmp/x.gguf", {}, {"k": {"a": 1}})),
    ("safetensors, complex", lambda: bitnet.write_safetensors("/tmp/x.safetensors", {"c": np.ones(2, np.complex64)})),
    ("llama, not a gguf", lambda: bitnet.Llama(__file__, verbose=False)),
    ("threads 0", lambda: bitnet.set_num_threads(0)),
]


@pytest.mark.parametrize("name,call", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises(name, call):
    with pytest.raises((bitnet.BitnetError, TypeError, ValueError)):
        call()


def test_non_contiguous_and_other_dtypes_are_converted():
    w = np.random.default_rng(0).standard_normal((512, 64)).T  # float64, Fortran order
    q = bitnet.quantize_ternary(w)
    np.testing.assert_array_equal(q.values, bitnet.quantize_ternary(np.ascontiguousarray(w, F)).values)
