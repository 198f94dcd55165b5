"""Fixtures for the Hub download tests: the fake Hub on loopback (fake_hub.py) serving repositories made from the
bundled model and a golden checkpoint, and a runner for the built `bitnet` with HF_HOME in a fresh folder.

BITNET_CLI names the built binary (ctest passes it).
"""
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from fake_hub import FakeHub, Repo  # noqa: E402

CLI = os.environ.get("BITNET_CLI", str(ROOT / "build" / "release" / "bitnet"))
KJV = ROOT / "models" / "kjv-bitnet-2m.gguf"
PACKED = ROOT / "tests" / "golden" / "hf" / "bitnet_packed"


@pytest.fixture(scope="session")
def model_files(tmp_path_factory):
    """Bytes of the files the repositories hold: the bundled model (I2_S) and its F16 conversion."""
    d = tmp_path_factory.mktemp("models")
    f16 = d / "kjv-f16.gguf"
    subprocess.run([CLI, "convert", str(KJV), "-o", str(f16), "-t", "f16", "-q"], check=True)
    return {"i2_s": KJV.read_bytes(), "f16": f16.read_bytes()}


@pytest.fixture
def hub(model_files):
    h = FakeHub()
    h.add("bitnet-test/kjv-gguf", Repo({
        "README.md": b"# kjv\nA 2M-parameter BitNet b1.58 trained on the King James Bible.\n",
        "kjv-2m-I2_S.gguf": model_files["i2_s"],
        "kjv-2m-F16.gguf": model_files["f16"],
    }))
    h.add("bitnet-test/kjv-single", Repo({"ggml-model-i2_s.gguf": model_files["i2_s"]}))
    h.add("bitnet-test/tiny-packed", Repo({
        "config.json": (PACKED / "config.json").read_bytes(),
        "model.safetensors": (PACKED / "model.safetensors").read_bytes(),
        "README.md": b"# tiny packed BitNet checkpoint\n",
        "modeling_bitnet.py": b"# remote code that bitnet never needs\n",
    }))
    h.add("bitnet-test/gated", Repo({"ggml-model-i2_s.gguf": model_files["i2_s"]}, gated=True))
    h.add("bitnet-test/private", Repo({"ggml-model-i2_s.gguf": model_files["i2_s"]}, private=True))
    h.renamed["bitnet-test/old-name"] = "bitnet-test/kjv-single"
    yield h
    h.close()


@pytest.fixture
def env(hub, tmp_path):
    """The environment a user would have: HF_ENDPOINT at the fake Hub, HF_HOME empty, no token."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "HUGGING_FACE_HUB_TOKEN"}
    e.update({"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1",
              "HF_HUB_DISABLE_XET": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return e


def bitnet(env, *args, check=True, timeout=120):
    """Runs the CLI; returns the CompletedProcess (text)."""
    p = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"bitnet {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p
