"""bitnet.onnx.export from Python, and ONNX files through bitnet.Llama: the exported graph runs in ONNX Runtime in
the same process (the package's protobuf and the onnx wheel's live side by side) with the engine's logits, and
Llama(model_path="x.onnx") computes what Llama(model_path="x.gguf") computes."""
import numpy as np
import pytest

import bitnet

onnx = pytest.importorskip("onnx", reason="the PyPI package onnx (scripts/setup.sh installs it)")
ort = pytest.importorskip("onnxruntime", reason="the PyPI package onnxruntime (scripts/setup.sh installs it)")
if not bitnet._core.onnx_built():
    pytest.skip("this build of bitnet has no ONNX support (libonnx-dev was missing)", allow_module_level=True)
import bitnet.onnx  # noqa: E402


def test_export_runs_in_onnx_runtime_with_the_engines_logits(tiny_model, tmp_path):
    out = tmp_path / "tiny.onnx"
    info = bitnet.onnx.export(tiny_model, out)
    assert info["path"] == str(out) and info["opset"] == bitnet.onnx.OPSET == 17
    assert info["external_data"] is None and info["onnx_bytes"] == out.stat().st_size
    onnx.checker.check_model(onnx.load(str(out)))
    llm = bitnet.Llama(str(tiny_model), n_ctx=64, logits_all=True, verbose=False)
    tokens = llm.tokenize(b"And God said, Let there be light", add_bos=True)
    llm.eval(tokens)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    shape = next(i for i in session.get_inputs() if i.name == "past_key_values.0.key").shape
    layers = sum(1 for i in session.get_inputs() if i.name.endswith(".key"))
    ids = np.array([tokens], np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "position_ids": np.arange(len(tokens))[None]}
    for layer in range(layers):
        for kv in ("key", "value"):
            feed[f"past_key_values.{layer}.{kv}"] = np.zeros((1, shape[1], 0, shape[3]), np.float32)
    logits = session.run(["logits"], feed)[0][0]
    err = np.abs(logits - llm._scores).max(-1) / np.abs(llm._scores).max(-1)
    assert err.max() < 1e-2 and np.median(err) < 1e-5


def test_llama_opens_an_onnx_file_as_the_gguf(tiny_model, tmp_path):
    out = bitnet.onnx.export(tiny_model, tmp_path / "tiny.onnx", external_data="always")
    assert out["external_data"] == str(tmp_path / "tiny.onnx.data")
    a = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False)
    b = bitnet.Llama(str(tmp_path / "tiny.onnx"), n_ctx=64, verbose=False)
    ta = a("In the beginning", max_tokens=16, temperature=0)["choices"][0]["text"]
    tb = b("In the beginning", max_tokens=16, temperature=0)["choices"][0]["text"]
    assert ta == tb and ta


def test_bad_arguments_are_errors(tiny_model, tmp_path):
    with pytest.raises(bitnet.BitnetError, match="external_data"):
        bitnet.onnx.export(tiny_model, tmp_path / "x.onnx", external_data="sometimes")
    with pytest.raises(bitnet.BitnetError, match=r"\.onnx"):
        bitnet.onnx.export(tiny_model, tmp_path / "x.bin")
