"""Quantizers, dequantizers and error metrics against NumPy re-computations of their documented formulas."""
import numpy as np
import pytest

import bitnet


def rng(seed=0):
    return np.random.default_rng(seed)


def test_quantize_ternary_per_tensor_matches_formula():
    w = rng().standard_normal((8, 300)).astype(np.float32)
    q = bitnet.quantize_ternary(w)
    gamma = np.float32(np.abs(w.astype(np.float64)).mean())
    expect = np.clip(np.round(w / gamma), -1, 1).astype(np.int8)
    assert q.values.dtype == np.int8 and q.values.shape == (8, 300)
    np.testing.assert_array_equal(q.values, expect)
    np.testing.assert_allclose(q.scales, [gamma], rtol=1e-6)
    np.testing.assert_allclose(bitnet.dequantize(q), expect * q.scales[0], rtol=0, atol=0)


def test_quantize_ternary_per_channel_and_group():
    w = rng(1).standard_normal((4, 256)).astype(np.float32)
    ch = bitnet.quantize_ternary(w, "per_channel")
    assert ch.scales.shape == (4,) and ch.granularity == "per_channel"
    np.testing.assert_allclose(ch.scales, np.abs(w).mean(axis=1), rtol=1e-6)
    gr = bitnet.quantize_ternary(w, "per_group", group_size=64)
    assert gr.scales.shape == (16,)
    np.testing.assert_allclose(gr.scales, np.abs(w).reshape(4, 4, 64).mean(axis=2).ravel(), rtol=1e-6)


def test_outputs_are_read_only_views():
    q = bitnet.quantize_ternary(rng().standard_normal((2, 8)).astype(np.float32))
    with pytest.raises(ValueError):
        q.values[0, 0] = 5  # the codes belong to the C++ object: no silent corruption


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantize_weights_symmetric_round_trip(bits):
    w = rng(bits).standard_normal((6, 128)).astype(np.float32)
    q = bitnet.quantize_weights(w, bits=bits, symmetric=True, granularity="per_channel")
    assert q.codes.shape == (6, 128) and q.codes.max() < 2**bits
    zp = 2 ** (bits - 1)
    np.testing.assert_array_equal(q.zero_points, np.full(6, zp))
    scale = np.abs(w).max(axis=1) / (zp - 1)
    np.testing.assert_allclose(q.scales, scale, rtol=1e-6)
    deq = bitnet.dequantize(q)
    np.testing.assert_allclose(deq, (q.codes.astype(np.float32) - zp) * q.scales[:, None], rtol=1e-6)
    assert np.abs(deq - w).max() <= scale.max() / 2 + 1e-6  # within half a step


def test_quant_error_metrics():
    x = rng(2).standard_normal(1000).astype(np.float32)
    x_hat = x + rng(3).standard_normal(1000).astype(np.float32) * 0.1
    e = bitnet.quant_error(x, x_hat)
    d = (x - x_hat).astype(np.float64)
    assert e.mse == pytest.approx((d**2).mean(), rel=1e-6)
    assert e.sqnr_db == pytest.approx(10 * np.log10((x.astype(np.float64) ** 2).sum() / (d**2).sum()), rel=1e-6)
    cos = np.dot(x, x_hat) / (np.linalg.norm(x) * np.linalg.norm(x_hat))
    assert e.cosine == pytest.approx(cos, rel=1e-6)
    assert e.relative_error == pytest.approx(np.linalg.norm(d) / np.linalg.norm(x), rel=1e-6)


def test_packing_bits_per_weight():
    bpw = bitnet.packing_bits_per_weight(2560)
    by_prefix = {name.split(" ")[0]: v for name, v in bpw.items()}
    assert by_prefix["TQ2_0"] == pytest.approx(66 * 8 / 256)
    assert by_prefix["TQ1_0"] == pytest.approx(54 * 8 / 256)


def test_bad_input_raises_with_the_library_message():
    with pytest.raises(bitnet.BitnetError, match=r"\[quantize_ternary\]"):
        bitnet.quantize_ternary(np.ones((4, 10), np.float32), "per_group", group_size=3)
    with pytest.raises(bitnet.BitnetError, match="unknown granularity 'rows'"):
        bitnet.quantize_ternary(np.ones((4, 10), np.float32), "rows")
    with pytest.raises(bitnet.BitnetError, match=r"bits must be 1, 2, 4 or 8"):
        bitnet.quantize_weights(np.ones((4, 10), np.float32), bits=3)
    with pytest.raises(bitnet.BitnetError, match="weights must have 2 dimensions"):
        bitnet.quantize_ternary(np.ones(10, np.float32))
    with pytest.raises(bitnet.BitnetError):
        bitnet.quant_error(np.ones(3, np.float32), np.ones(4, np.float32))
    assert issubclass(bitnet.BitnetError, RuntimeError)
