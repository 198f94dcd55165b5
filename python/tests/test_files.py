"""GGUF and safetensors from Python: files written by bitnet read back by the reference readers (gguf-py,
safetensors) and the other way round; tensors are views of the mapped file; bad files raise the library's message,
the same one the C++ CLI prints."""
import numpy as np
import pytest

import bitnet
from conftest import requires_cli, run_cli


def test_gguf_write_read_round_trip(tmp_path):
    path = str(tmp_path / "t.gguf")
    r = np.random.default_rng(0)
    f32 = r.standard_normal((3, 5)).astype(np.float32)
    f16 = r.standard_normal(7).astype(np.float16)
    i32 = np.arange(6, dtype=np.int32).reshape(2, 3)
    tern = r.integers(-1, 2, (4, 256), dtype=np.int8)
    packed = bitnet.pack_ternary(tern, "tq2_0", 0.5)
    meta = {"general.architecture": "test", "general.name": "round trip", "test.count": 7, "test.neg": -3,
            "test.ratio": 0.25, "test.flag": True, "test.tokens": ["a", "b", "c"], "test.ids": [1, 2, 3],
            "test.small": (5, "u8"), "test.u16s": ([1, 2], "u16[]"), "test.scores": np.array([0.5, 1.5], np.float32)}
    bitnet.write_gguf(path, {"a": f32, "b": f16, "c": i32, "t": (packed, "TQ2_0", tern.shape)}, meta)

    g = bitnet.GgufFile(path)
    assert g.version == 3 and g.architecture == "test"
    m = g.metadata
    assert m["general.name"] == "round trip" and m["test.count"] == 7 and m["test.neg"] == -3
    assert m["test.ratio"] == 0.25 and m["test.flag"] is True and m["test.small"] == 5
    assert m["test.tokens"] == ["a", "b", "c"]
    np.testing.assert_array_equal(m["test.ids"], [1, 2, 3])
    assert m["test.ids"].dtype == np.int32 and m["test.u16s"].dtype == np.uint16
    np.testing.assert_array_equal(m["test.scores"], [0.5, 1.5])
    np.testing.assert_array_equal(g.tensor("a"), f32)
    np.testing.assert_array_equal(g.tensor("b"), f16)
    np.testing.assert_array_equal(g.tensor("c"), i32)
    info = {t["name"]: t for t in g.tensors}
    assert info["t"]["type"] == "TQ2_0" and info["t"]["shape"] == (4, 256) and info["t"]["dims"] == (256, 4)
    values, scale = bitnet.unpack_ternary(g.tensor("t"), "tq2_0", 4, 256)
    np.testing.assert_array_equal(values, tern)
    assert scale == 0.5

    # Zero-copy: the arrays view the mapping (not owned, read-only) and keep it alive after the file object goes.
    a = g.tensor("a")
    assert not a.flags.owndata and not a.flags.writeable
    del g
    np.testing.assert_array_equal(a, f32)


def test_gguf_written_by_bitnet_reads_in_gguf_py(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = str(tmp_path / "t.gguf")
    w = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    bitnet.write_gguf(path, {"w": w}, {"general.architecture": "x", "x.n": 3})
    reader = gguf.GGUFReader(path)
    t = reader.get_tensor(0)
    assert t.name == "w"
    np.testing.assert_array_equal(np.asarray(t.data).reshape(2, 8), w)
    field = reader.get_field("x.n")
    assert int(field.parts[field.data[0]][0]) == 3


def test_gguf_py_file_reads_in_bitnet(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = str(tmp_path / "o.gguf")
    w = gguf.GGUFWriter(path, "llama")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    w.add_uint32("llama.block_count", 2)
    w.add_tensor("x", a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    g = bitnet.GgufFile(path)
    assert g.metadata["llama.block_count"] == 2 and g.architecture == "llama"
    np.testing.assert_array_equal(g.tensor("x"), a)


def test_safetensors_round_trip_with_reference_reader(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = str(tmp_path / "t.safetensors")
    r = np.random.default_rng(2)
    tensors = {"w": r.standard_normal((4, 3)).astype(np.float32), "i": np.arange(5, dtype=np.int64),
               "h": r.standard_normal(3).astype(np.float16)}
    bitnet.write_safetensors(path, tensors, {"format": "np"})
    back = st.load_file(path)
    for k, v in tensors.items():
        np.testing.assert_array_equal(back[k], v)
    other = str(tmp_path / "o.safetensors")
    st.save_file({"z": np.ones((2, 2), np.float64)}, other)
    f = bitnet.SafetensorsFile(other)
    assert [t["name"] for t in f.tensors] == ["z"] and f.tensors[0]["dtype"] == "F64"
    z = f.tensor("z")
    assert not z.flags.owndata and not z.flags.writeable
    np.testing.assert_array_equal(z, np.ones((2, 2)))
    assert bitnet.SafetensorsFile(path).metadata == {"format": "np"}


def test_bad_files_raise(tmp_path):
    with pytest.raises(bitnet.BitnetError, match="nope.gguf"):
        bitnet.GgufFile(str(tmp_path / "nope.gguf"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}")
    with pytest.raises(bitnet.BitnetError):
        bitnet.SafetensorsFile(str(bad))
    ok = str(tmp_path / "ok.gguf")
    bitnet.write_gguf(ok, {"a": np.zeros(2, np.float32)})
    with pytest.raises(bitnet.BitnetError, match="nope"):
        bitnet.GgufFile(ok).tensor("nope")
    with pytest.raises(bitnet.BitnetError, match="tensor name"):
        bitnet.write_gguf(str(tmp_path / "x.gguf"), {"n" * 70: np.zeros(2, np.float32)})
    with pytest.raises(bitnet.BitnetError, match="does not fit in u8"):
        bitnet.write_gguf(str(tmp_path / "x.gguf"), {}, {"k": (300, "u8")})
    with pytest.raises(bitnet.BitnetError, match="needs 66 bytes"):
        bitnet.write_gguf(str(tmp_path / "x.gguf"), {"t": (np.zeros(10, np.uint8), "TQ2_0", (1, 256))})


@requires_cli
def test_error_message_equals_the_cli(tmp_path):
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x01" * 8)  # version 3, then a truncated tensor count
    with pytest.raises(bitnet.BitnetError) as e:
        bitnet.GgufFile(str(bad))
    cli = run_cli("inspect", str(bad), check=False)
    assert cli.returncode != 0
    assert f"bitnet: error: {e.value}" in cli.stderr
