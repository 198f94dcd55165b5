"""The ternary and n-bit kernels from NumPy, against a NumPy reference of the same integer arithmetic."""
import numpy as np
import pytest

import bitnet


def act_reference(x):
    """Per-token absmax int8 (BitNet b1.58): q and the dequant factor 1/s."""
    s = np.float32(127) / np.maximum(np.abs(x).max(axis=1, keepdims=True), np.float32(1e-5))
    q = np.clip(np.round(x * s), -128, 127).astype(np.int8)
    return q, (np.float32(1) / s).ravel()


@pytest.mark.parametrize("tokens,rows,cols", [(1, 64, 256), (3, 17, 300), (8, 128, 1024)])
def test_ternary_matmul_equals_integer_reference(tokens, rows, cols):
    r = np.random.default_rng(rows)
    w = r.standard_normal((rows, cols)).astype(np.float32)
    x = r.standard_normal((tokens, cols)).astype(np.float32)
    m = bitnet.TernaryMatrix.quantize(w)
    q = bitnet.quantize_ternary(w)
    np.testing.assert_array_equal(m.unpack(), q.values)

    qa = bitnet.quantize_activations(x)
    qx, dequant = act_reference(x)
    np.testing.assert_array_equal(qa.q, qx)
    np.testing.assert_allclose(qa.dequant, dequant, rtol=1e-7)
    np.testing.assert_array_equal(qa.sums, qx.astype(np.int32).sum(axis=1))

    acc = qx.astype(np.int64) @ q.values.astype(np.int64).T  # exact integer products
    expect = acc.astype(np.float32) * dequant[:, None] * np.float32(m.scale)
    y = m.matmul(qa)
    assert y.shape == (tokens, rows) and y.dtype == np.float32
    np.testing.assert_allclose(y, expect, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(m(x), y)  # bitlinear = quantize + matmul
    # Results are handed over, not copied: the arrays view C++-owned buffers.
    assert not y.flags.owndata and y.base is not None
    assert not m(x).flags.owndata and not qa.q.flags.owndata


@pytest.mark.parametrize("tokens,rows,cols", [(1, 9, 1300), (3, 8, 2560), (6, 13, 6912)])
def test_base3_packing_gives_the_2bit_results(tokens, rows, cols):
    """1.6 bits per weight (superblocks of 1280 weights, 2-bit tail blocks), the same weights: identical results."""
    r = np.random.default_rng(cols)
    v = r.integers(-1, 2, (rows, cols), dtype=np.int8)
    x = r.standard_normal((tokens, cols)).astype(np.float32)
    two = bitnet.TernaryMatrix.pack(v, 0.5)
    three = bitnet.TernaryMatrix.pack(v, 0.5, packing="base3")
    assert (two.packing, three.packing) == ("2bit", "base3")
    assert three.nbytes < 0.85 * two.nbytes
    np.testing.assert_array_equal(three.unpack(), v)
    np.testing.assert_array_equal(three(x), two(x))
    with pytest.raises(bitnet.BitnetError, match="packing '3bit'"):
        bitnet.TernaryMatrix.pack(v, 0.5, packing="3bit")


def test_bitlinear_keeps_leading_dims():
    w = bitnet.TernaryMatrix.pack(np.eye(4, 256, dtype=np.int8), 2.0)
    x = np.random.default_rng(1).standard_normal((2, 3, 256)).astype(np.float32)
    y = w(x)
    assert y.shape == (2, 3, 4)
    _, dequant = act_reference(x.reshape(6, 256))
    qx, _ = act_reference(x.reshape(6, 256))
    np.testing.assert_allclose(y.reshape(6, 4), qx[:, :4] * dequant[:, None] * 2.0, rtol=1e-6)


def test_fused_rms_norm_quantization():
    r = np.random.default_rng(2)
    x = r.standard_normal((3, 512)).astype(np.float32)
    g = r.uniform(0.5, 1.5, 512).astype(np.float32)
    qa = bitnet.quantize_activations(x, norm_weight=g, eps=1e-5)
    xn = x / np.sqrt((x.astype(np.float64) ** 2).mean(axis=1, keepdims=True) + 1e-5) * g
    qx, _ = act_reference(xn.astype(np.float32))
    assert np.abs(qa.q.astype(int) - qx).max() <= 1  # float rounding of the norm may move a code by one


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_nbit_matmul_matches_dequantized_product(bits):
    r = np.random.default_rng(bits)
    w = r.standard_normal((32, 512)).astype(np.float32)
    x = r.standard_normal((4, 512)).astype(np.float32)
    q = bitnet.quantize_weights(w, bits=bits, symmetric=True, granularity="per_channel")
    m = bitnet.NbitMatrix.pack(q)
    np.testing.assert_array_equal(m.unpack_codes(), q.codes)
    qa = bitnet.quantize_activations(x)
    qx, dequant = act_reference(x)
    expect = (qx.astype(np.float64) @ bitnet.dequantize(q).astype(np.float64).T) * dequant[:, None]
    np.testing.assert_allclose(m.matmul(qa), expect, rtol=1e-4, atol=1e-4)


def test_kernel_errors_raise():
    m = bitnet.TernaryMatrix.quantize(np.ones((4, 256), np.float32))
    msg = r"\[ternary_matmul\] activations have 128 columns but the weights 256"
    with pytest.raises(bitnet.BitnetError, match=msg):
        m.matmul(bitnet.quantize_activations(np.ones((1, 128), np.float32)))
    with pytest.raises(bitnet.BitnetError, match=r"\[bitlinear\]"):
        m(np.ones((2, 100), np.float32))
    with pytest.raises(bitnet.BitnetError):
        bitnet.TernaryMatrix.pack(np.full((2, 256), 3, np.int8))
    with pytest.raises(bitnet.BitnetError, match="norm_weight must have shape"):
        bitnet.quantize_activations(np.ones((1, 8), np.float32), norm_weight=np.ones(4, np.float32))
