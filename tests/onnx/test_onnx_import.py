"""ONNX files into the engine: torch.onnx exports of transformers' BitNetForCausalLM (latent weights quantized online
by the graph) and our own exports; GGUF -> ONNX -> GGUF read back by llama.cpp's gguf-py; graphs that are not a
BitNet decoder, or files that lie, refused by name.
"""
import shutil

import numpy as np
import pytest

from conftest import GOLDEN, KJV, Decoder, bitnet, engine_logits, export, onnx

torch = pytest.importorskip("torch", reason="the PyPI package torch (scripts/setup.sh installs it)")
transformers = pytest.importorskip("transformers", reason="the PyPI package transformers (scripts/setup.sh installs it)")
pytest.importorskip("onnxscript", reason="the PyPI package onnxscript, which torch.onnx.export(dynamo=True) needs")
helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto


def torch_export(src, out_dir, seq=6):
    """transformers' model from `src`, exported by torch.onnx as a user would, with config.json beside it."""
    model = transformers.AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32).eval()
    model.config.use_cache = False
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = torch.arange(1, seq + 1).unsqueeze(0)
    torch.onnx.export(model, (ids,), str(out_dir / "model.onnx"), input_names=["input_ids"], output_names=["logits"],
                      dynamo=True, verbose=False)
    shutil.copy(src / "config.json", out_dir / "config.json")
    return model, out_dir / "model.onnx"


@pytest.fixture(scope="module")
def latent_export(tmp_path_factory):
    return torch_export(GOLDEN / "bitnet_latent", tmp_path_factory.mktemp("torch") / "bitnet_latent")


def gguf_tensors(path):
    gguf = pytest.importorskip("gguf", reason="the PyPI package gguf (llama.cpp's reader)")
    r = gguf.GGUFReader(str(path))
    return {t.name: (int(t.tensor_type), t.data.tobytes()) for t in r.tensors}


def test_torch_export_converts_to_the_checkpoints_model(latent_export, tmp_path):
    """The torch graph's weights become exactly the GGUF that the checkpoint directory itself converts to."""
    _, path = latent_export
    bitnet("convert", path, "-o", tmp_path / "from_onnx.gguf", "-t", "tq2_0")
    bitnet("convert", GOLDEN / "bitnet_latent", "-o", tmp_path / "from_dir.gguf", "-t", "tq2_0", "--quantize")
    a, b = gguf_tensors(tmp_path / "from_onnx.gguf"), gguf_tensors(tmp_path / "from_dir.gguf")
    assert a.keys() == b.keys()
    assert [n for n in a if a[n] != b[n]] == []


def test_torch_export_runs_as_onnx_runtime_runs_it(latent_export, tmp_path):
    """ONNX Runtime on the torch graph (transformers' own arithmetic, online quantization and all) against our
    export of the same model imported from that graph."""
    model, path = latent_export
    ids = np.arange(1, 7, dtype=np.int64)[None]
    import onnxruntime as ort
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})[0][0]
    ours_path = export(path, tmp_path / "ours.onnx")  # their graph -> our graph
    ours, _ = Decoder(ours_path).step(ids, Decoder(ours_path).empty_cache())
    err = np.abs(ours[0] - theirs).max(-1) / np.abs(theirs).max(-1)
    print(f"torch.onnx graph vs our export of it: per position worst {err.max():.1e}")
    assert err.max() < 1e-2
    assert (ours[0].argmax(-1) == theirs.argmax(-1)).all()


def test_round_trip_read_by_gguf_py(tmp_path):
    """GGUF (TQ2_0, TQ1_0) -> ONNX -> GGUF: every tensor and key the same, as llama.cpp's own reader sees them.
    The output type is the one the ONNX file records, without -t."""
    gguf = pytest.importorskip("gguf")
    for t in ("tq2_0", "tq1_0"):
        src = tmp_path / f"packed-{t}.gguf"
        bitnet("convert", GOLDEN / "bitnet_packed", "-o", src, "-t", t)
        export(src, tmp_path / f"{t}.onnx")
        bitnet("convert", tmp_path / f"{t}.onnx", "-o", tmp_path / f"back-{t}.gguf")
        a, b = gguf_tensors(src), gguf_tensors(tmp_path / f"back-{t}.gguf")
        assert a.keys() == b.keys() and [n for n in a if a[n] != b[n]] == [], t
        ka = {k: v.parts[-1].tobytes() for k, v in gguf.GGUFReader(str(src)).fields.items() if not k.startswith("GGUF.")}
        kb = {k: v.parts[-1].tobytes() for k, v in gguf.GGUFReader(str(tmp_path / f"back-{t}.gguf")).fields.items()
              if not k.startswith("GGUF.")}
        assert ka == kb, t


def test_run_reads_an_onnx_file(tmp_path):
    onnx_path = export(KJV, tmp_path / "kjv.onnx")
    a = bitnet("run", "-m", KJV, "-p", "In the beginning", "-n", "12", "--temp", "0", "--no-display-prompt").stdout
    b = bitnet("run", "-m", onnx_path, "-p", "In the beginning", "-n", "12", "--temp", "0", "--no-display-prompt").stdout
    assert a == b and len(a) > 0


# ---- refused, by name -----------------------------------------------------------------------------------------

def small_graph(nodes, initializers, metadata=None):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], initializers)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for k, v in (metadata or {}).items():
        m.metadata_props.add(key=k, value=v)
    return m


def refused(tmp_path, model, *words, config=True, name="m.onnx", save=None):
    d = tmp_path / "case"
    d.mkdir(exist_ok=True)
    if config:
        shutil.copy(GOLDEN / "bitnet_latent" / "config.json", d / "config.json")
    if save:
        save(d / name)
    else:
        onnx.save(model, str(d / name))
    r = bitnet("convert", d / name, "-o", d / "out.gguf", check=False)
    assert r.returncode != 0, r.stdout
    for w in (name, *words):
        assert w in r.stderr, r.stderr
    assert not (d / "out.gguf").exists()
    return r.stderr


def test_refuses_operators_no_decoder_has(tmp_path):
    w = numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "conv.weight")
    refused(tmp_path, small_graph([helper.make_node("Conv", ["input_ids", "conv.weight"], ["logits"], name="stem")], [w]),
            "'stem'", "Conv")


def test_refuses_custom_domains(tmp_path):
    n = helper.make_node("MatMulNBits", ["input_ids"], ["logits"], name="q4", domain="com.microsoft")
    refused(tmp_path, small_graph([n], []), "'q4'", "com.microsoft")


def test_refuses_parameters_without_a_place(tmp_path):
    w = numpy_helper.from_array(np.zeros((8,), np.float32), "model.layers.0.self_attn.q_proj.bias")
    refused(tmp_path, small_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], [w]),
            "model.layers.0.self_attn.q_proj.bias")


def test_refuses_missing_weights(tmp_path):
    w = numpy_helper.from_array(np.zeros((512, 256), np.float32), "model.embed_tokens.weight")
    refused(tmp_path, small_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], [w]),
            "the weight 'output_norm.weight' is missing")


def test_refuses_a_torch_export_without_its_config(tmp_path):
    refused(tmp_path, small_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], []), "config.json",
            config=False)


def test_refuses_external_data_outside_its_directory(tmp_path):
    t = TensorProto(name="model.embed_tokens.weight", data_type=TensorProto.FLOAT, dims=[512, 256])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../etc/passwd"), ("offset", "0"), ("length", str(512 * 256 * 4))):
        t.external_data.add(key=k, value=v)
    refused(tmp_path, small_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], [t]),
            "model.embed_tokens.weight", "relative")


def test_refuses_raw_data_shorter_than_its_dims(tmp_path):
    t = TensorProto(name="model.norm.weight", data_type=TensorProto.FLOAT, dims=[256],
                    raw_data=np.zeros(10, np.float32).tobytes())
    refused(tmp_path, small_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], [t]),
            "model.norm.weight", "raw_data")


def test_refuses_our_export_with_a_tampered_weight(tmp_path):
    m = onnx.load(str(export(KJV, tmp_path / "kjv.onnx")))
    w = next(i for i in m.graph.initializer if i.name == "blk.0.attn_q.weight")
    a = numpy_helper.to_array(w).copy()
    a[0, 0] = 5  # not ternary
    w.CopyFrom(numpy_helper.from_array(a, w.name))
    refused(tmp_path, m, "blk.0.attn_q.weight", "not ternary", config=False)


def test_refuses_bytes_that_are_not_onnx(tmp_path):
    refused(tmp_path, None, "not an ONNX model", config=False,
            save=lambda p: p.write_bytes(b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage"))


def test_a_torch_export_of_packed_weights_says_what_to_do(tmp_path):
    """Offline (packed uint8) checkpoints: torch.onnx folds their unpacking into unnamed constants, which this
    importer cannot place; it says so and names the way out."""
    _, path = torch_export(GOLDEN / "bitnet_packed", tmp_path / "packed")
    r = bitnet("convert", path, "-o", tmp_path / "p.gguf", check=False)
    assert r.returncode != 0 and "weight_scale' is there but its packed weight" in r.stderr and "online" in r.stderr


def test_export_flags_that_do_not_apply_to_a_model_file_are_errors(tmp_path):
    # -o/--hf/--type/--name export a training run; -c names a run's config: with a GGUF source they are refused
    # before anything is written, never ignored.
    r = bitnet("export", KJV, "--onnx", tmp_path / "a.onnx", "-o", tmp_path / "a.gguf", check=False)
    assert r.returncode != 0 and "model file or directory" in r.stderr
    assert not (tmp_path / "a.onnx").exists() and not (tmp_path / "a.gguf").exists()
    r = bitnet("export", KJV, "--onnx", tmp_path / "b.onnx", "-c", tmp_path / "run.json", check=False)
    assert r.returncode != 0 and "-c/--config" in r.stderr and not (tmp_path / "b.onnx").exists()
