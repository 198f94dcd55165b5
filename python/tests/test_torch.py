"""bitnet.torch.BitLinear: STE training in PyTorch, inference through bitnet's kernels, GGUF export."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the bitnet.torch tests need it")
import json  # noqa: E402

import bitnet  # noqa: E402
from bitnet.torch import (BitLinear, export_gguf, load_ternary_from_gguf, quantize_weights_ste,  # noqa: E402
                          save_pretrained_gguf, state_dict_to_gguf)
from conftest import ROOT, requires_cli, run_cli  # noqa: E402


def reference_forward(x, w):
    """BitNet b1.58 quantized linear in float64 NumPy: per-token absmax int8 times absmean ternary."""
    x = x.astype(np.float64)
    s = 127.0 / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-5)
    xq = np.clip(np.round(x * s), -128, 127) / s
    gamma = max(np.abs(w.astype(np.float64)).mean(), 1e-5)
    wq = np.clip(np.round(w / gamma), -1, 1) * gamma
    return xq @ wq.T


def test_ste_forward_matches_reference_and_gradients_flow():
    torch.manual_seed(0)
    layer = BitLinear(256, 32)
    x = torch.randn(4, 256, requires_grad=True)
    y = layer(x)
    np.testing.assert_allclose(y.detach().numpy(), reference_forward(x.detach().numpy(), layer.weight.detach().numpy()),
                               rtol=1e-4, atol=1e-5)
    y.square().sum().backward()
    assert x.grad is not None and layer.weight.grad is not None
    assert torch.count_nonzero(layer.weight.grad) > 0
    # STE: the gradient w.r.t. the latent weight is the gradient w.r.t. the quantized weight.
    xq = layer.forward_ste(x).detach()
    assert xq.shape == (4, 32)


def test_training_reduces_the_loss():
    torch.manual_seed(1)
    model = torch.nn.Sequential(BitLinear(64, 64, with_norm=True), torch.nn.ReLU(), BitLinear(64, 8, with_norm=True))
    x = torch.randn(256, 64)
    target = x[:, :8] * 2.0
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(model(x), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize("with_norm,bias", [(False, False), (True, True)])
def test_eval_runs_through_the_kernels_and_matches_training_forward(with_norm, bias):
    torch.manual_seed(2)
    layer = BitLinear(300, 48, bias=bias, with_norm=with_norm)
    if with_norm:
        torch.nn.init.uniform_(layer.norm_weight, 0.5, 1.5)
    x = torch.randn(2, 5, 300)
    train_y = layer.forward_ste(x).detach()
    layer.eval()
    with torch.no_grad():
        y = layer(x)
    assert y.shape == (2, 5, 48)
    np.testing.assert_allclose(y.numpy(), train_y.numpy(), rtol=2e-3, atol=2e-3)
    # Exactly what the C++ kernel computes for the same input.
    xs = x.reshape(-1, 300).numpy()
    w = bitnet.TernaryMatrix.quantize(layer.weight.detach().numpy())
    if with_norm:
        k = w.matmul(bitnet.quantize_activations(xs, norm_weight=layer.norm_weight.detach().numpy(), eps=layer.eps))
    else:
        k = w(xs)
    k = k + (layer.bias.detach().numpy() if bias else 0)
    np.testing.assert_array_equal(y.reshape(-1, 48).numpy(), k.astype(np.float32))


def test_packed_weights_follow_updates():
    layer = BitLinear(256, 8).eval()
    x = torch.randn(1, 256)
    with torch.no_grad():
        y0 = layer(x)
        layer.weight.mul_(-1.0)  # an in-place update bumps the version: re-packed
        y1 = layer(x)
    np.testing.assert_allclose(y1.numpy(), -y0.numpy(), rtol=1e-6)


@pytest.mark.parametrize("ttype", ["tq2_0", "tq1_0", "i2_s"])
def test_export_gguf_round_trip(tmp_path, ttype):
    torch.manual_seed(3)
    model = torch.nn.Sequential(BitLinear(256, 16, with_norm=True), torch.nn.Linear(16, 4))
    path = str(tmp_path / "m.gguf")
    export_gguf(model, path, ternary_type=ttype, metadata={"general.architecture": "bitlinear-test"})
    f = bitnet.GgufFile(path)
    types = {t["name"]: t["type"] for t in f.tensors}
    assert types["0.weight"] == ttype.upper() and types["1.weight"] == "F32" and types["0.norm_weight"] == "F32"
    values, scale = load_ternary_from_gguf(path, "0.weight")
    expect_values, expect_scale = model[0].ternary_weights()
    np.testing.assert_array_equal(values, expect_values)
    tol = 1e-3 if ttype.startswith("tq") else 0  # TQ stores the scale as f16
    assert scale == pytest.approx(expect_scale, rel=tol)
    np.testing.assert_array_equal(f.tensor("1.weight"), model[1].weight.detach().numpy())
    # The exported weights give the same kernel output as the module.
    x = torch.randn(3, 256)
    model.eval()
    with torch.no_grad():
        y = model[0](x).numpy()
    w = bitnet.TernaryMatrix.pack(values, scale)
    qa = bitnet.quantize_activations(x.numpy(), norm_weight=f.tensor("0.norm_weight"), eps=1e-5)
    np.testing.assert_allclose(w.matmul(qa), y, rtol=tol + 1e-6, atol=1e-6)


def test_export_errors():
    with pytest.raises(ValueError, match="ternary_type"):
        state_dict_to_gguf({"w": torch.zeros(2, 2)}, "x.gguf", ["w"], ternary_type="q4_0")
    with pytest.raises(KeyError):
        state_dict_to_gguf({"w": torch.zeros(2, 2)}, "x.gguf", ["v"])


@requires_cli
def test_save_pretrained_gguf_equals_cli_convert(tmp_path):
    """A latent-weight BitNetForCausalLM state dict (the golden HF checkpoint) -> GGUF through bitnet.torch equals
    `bitnet convert --quantize` of the same checkpoint, and its ternary values equal PyTorch's absmean STE."""
    src = ROOT / "tests" / "golden" / "hf" / "bitnet_latent"
    st = bitnet.SafetensorsFile(str(src / "model.safetensors"))
    state = {t["name"]: torch.from_numpy(np.array(st.tensor(t["name"]))) for t in st.tensors}
    config = json.loads((src / "config.json").read_text())
    out = str(tmp_path / "torch.gguf")
    summary = save_pretrained_gguf(state, config, out, ternary_type="tq2_0")
    assert summary["quantized_tensors"] == 14  # 7 projections x 2 layers
    ref = str(tmp_path / "cli.gguf")
    run_cli("convert", str(src), "-o", ref, "-t", "tq2_0", "--quantize", "-q")
    a, b = bitnet.GgufFile(out), bitnet.GgufFile(ref)
    assert [t["name"] for t in a.tensors] == [t["name"] for t in b.tensors]
    for t in a.tensors:
        np.testing.assert_array_equal(a.tensor(t["name"]), b.tensor(t["name"]), err_msg=t["name"])
    w = state["model.layers.0.mlp.down_proj.weight"]
    values, scale = bitnet.unpack_ternary(a.tensor("blk.0.ffn_down.weight"), "tq2_0", *w.shape)
    wq = quantize_weights_ste(w).numpy()
    gamma = np.abs(w.numpy()).mean()
    np.testing.assert_array_equal(values, np.round(wq / gamma).astype(np.int8))
    assert scale == pytest.approx(gamma, rel=1e-3)  # TQ2_0 keeps the scale as f16
