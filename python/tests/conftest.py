"""Shared fixtures: the checkout's paths, the C++ CLI (the reference the Python results are compared with) and a
small random model with a real tokenizer."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = pathlib.Path(os.environ.get("BITNET_CLI", ROOT / "build" / "release" / "bitnet"))
VOCAB_SPM = ROOT.parent / "shared" / "data" / "tokenizers" / "ggml-vocab-llama-spm.gguf"
if not VOCAB_SPM.exists():  # a checkout inside the shared folder's parent, or CI with the data beside it
    VOCAB_SPM = ROOT / "tests" / "data" / "tokenizers" / "ggml-vocab-llama-spm.gguf"


def cli_available() -> bool:
    return CLI.exists()


requires_cli = pytest.mark.skipif(not cli_available(), reason=f"the C++ CLI is not built ({CLI}); run `make release`")


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, check=check,
                          env={**os.environ, "BITNET_THREADS": "2"})


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> pathlib.Path:
    """A random-weight model of the tiny shape carrying the Llama-2 SentencePiece tokenizer and chat template."""
    if not cli_available():
        pytest.skip(f"the C++ CLI is not built ({CLI}); run `make release`")
    if not VOCAB_SPM.exists():
        pytest.skip(f"vocab GGUF not found: {VOCAB_SPM}")
    path = tmp_path_factory.mktemp("model") / "tiny.gguf"
    run_cli("make-model", "--arch", "tiny", "--vocab", str(VOCAB_SPM), str(path))
    return path
