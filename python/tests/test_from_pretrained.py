"""Llama.from_pretrained (llama-cpp-python's spelling) against the fake Hub of tests/hub on loopback: the files land
in the huggingface_hub cache, where the PyPI huggingface_hub package finds them, and the model runs as from a path."""
import hashlib
import pathlib
import sys

import pytest

import bitnet

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "hub"))
from fake_hub import FakeHub, Repo  # noqa: E402

hf = pytest.importorskip("huggingface_hub", reason="the PyPI package huggingface_hub (scripts/setup.sh installs it)")
KJV = ROOT / "models" / "kjv-bitnet-2m.gguf"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    h = FakeHub()
    h.add("bitnet-test/kjv-gguf", Repo({"README.md": b"# kjv\n", "kjv-2m-I2_S.gguf": KJV.read_bytes(),
                                        "kjv-2m-copy-I2_S.gguf": KJV.read_bytes() + b""}))
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    for v in ("HF_HUB_CACHE", "HF_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(v, raising=False)
    yield h
    h.close()


def test_from_pretrained_glob_runs_like_the_local_file(hub, tmp_path):
    llm = bitnet.Llama.from_pretrained("bitnet-test/kjv-gguf", filename="kjv-2m-I2_S.gguf", n_ctx=64, verbose=False)
    local = bitnet.Llama(model_path=str(KJV), n_ctx=64, verbose=False)
    a = llm("And God said", max_tokens=6, temperature=0)["choices"][0]["text"]
    assert a == local("And God said", max_tokens=6, temperature=0)["choices"][0]["text"]
    cached = hf.try_to_load_from_cache("bitnet-test/kjv-gguf", "kjv-2m-I2_S.gguf",
                                       cache_dir=str(tmp_path / "hf_home" / "hub"))
    assert cached and hashlib.sha256(pathlib.Path(cached).read_bytes()).hexdigest() == \
        hashlib.sha256(KJV.read_bytes()).hexdigest()


def test_from_pretrained_glob_local_dir_and_additional_files(hub, tmp_path):
    with pytest.raises(bitnet.BitnetError, match="matches 2 files"):
        bitnet.Llama.from_pretrained("bitnet-test/kjv-gguf", filename="*I2_S.gguf", verbose=False)
    out = tmp_path / "here"
    llm = bitnet.Llama.from_pretrained("bitnet-test/kjv-gguf", filename="*copy*.gguf", additional_files=["README.md"],
                                       local_dir=out, cache_dir=tmp_path / "cache", n_ctx=32, verbose=False)
    assert (out / "kjv-2m-copy-I2_S.gguf").is_file() and not (out / "kjv-2m-copy-I2_S.gguf").is_symlink()
    assert (out / "README.md").read_bytes() == b"# kjv\n"
    assert (tmp_path / "cache" / "models--bitnet-test--kjv-gguf" / "blobs").is_dir()
    assert llm("In the", max_tokens=2, temperature=0)["choices"][0]["text"]
    with pytest.raises(ValueError, match="local_dir_use_symlinks"):
        bitnet.Llama.from_pretrained("bitnet-test/kjv-gguf", local_dir_use_symlinks="sometimes")


def test_from_pretrained_errors_are_bitnet_errors(hub):
    with pytest.raises(bitnet.BitnetError, match="was not found"):
        bitnet.Llama.from_pretrained("bitnet-test/missing", verbose=False)
