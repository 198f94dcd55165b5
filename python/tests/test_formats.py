"""Ternary file layouts (HF uint8, TQ1_0, TQ2_0, I2_S): byte-exact round trips, and TQ1_0/TQ2_0 bytes equal to
llama.cpp's own quantizer (gguf-py) as an independent oracle."""
import numpy as np
import pytest

import bitnet

FORMATS = ["hf_u8", "tq1_0", "tq2_0", "i2_s"]


def ternary_values(rows, cols, seed=0):
    return np.random.default_rng(seed).integers(-1, 2, size=(rows, cols), dtype=np.int8)


@pytest.mark.parametrize("fmt", FORMATS)
def test_pack_unpack_round_trip(fmt):
    v = ternary_values(8, 512)
    data = bitnet.pack_ternary(v, fmt, 0.5)
    assert data.dtype == np.uint8 and data.size == bitnet.ternary_nbytes(fmt, 8, 512)
    back, scale = bitnet.unpack_ternary(data, fmt, 8, 512)
    np.testing.assert_array_equal(back, v)
    if fmt != "hf_u8":  # HF keeps its scale outside the packed bytes
        assert scale == 0.5
        np.testing.assert_array_equal(bitnet.dequantize_ternary(data, fmt, 8, 512), v.astype(np.float32) * 0.5)


@pytest.mark.parametrize("fmt,qtype", [("tq1_0", "TQ1_0"), ("tq2_0", "TQ2_0")])
def test_tq_bytes_equal_llama_cpp_quantizer(fmt, qtype):
    gguf = pytest.importorskip("gguf")
    v = ternary_values(4, 256, seed=3)
    w = v.astype(np.float32) * 0.25  # exactly representable in f16: the oracle's block scale is 0.25 too
    oracle = gguf.quants.quantize(w, getattr(gguf.GGMLQuantizationType, qtype))
    np.testing.assert_array_equal(bitnet.pack_ternary(v, fmt, 0.25), oracle.reshape(-1))


def test_quantize_absmean_matches_reference_formula():
    w = np.random.default_rng(5).standard_normal((16, 64)).astype(np.float32)
    values, scale = bitnet.quantize_absmean(w)
    s = np.float32(np.abs(w.astype(np.float64)).mean())
    assert scale == pytest.approx(s, rel=1e-7)
    np.testing.assert_array_equal(values, np.clip(np.round(w * (np.float32(1) / s)), -1, 1).astype(np.int8))


def test_bad_layout_input_raises():
    with pytest.raises(bitnet.BitnetError, match="unknown format 'q4_0'"):
        bitnet.pack_ternary(ternary_values(4, 256), "q4_0")
    with pytest.raises(bitnet.BitnetError):
        bitnet.pack_ternary(np.full((4, 256), 2, np.int8), "tq2_0")  # 2 is not ternary
    with pytest.raises(bitnet.BitnetError, match="needs"):
        bitnet.unpack_ternary(np.zeros(10, np.uint8), "tq2_0", 4, 256)  # too few bytes
    with pytest.raises(bitnet.BitnetError):
        bitnet.ternary_nbytes("tq2_0", 4, 100)  # cols not a multiple of 256
