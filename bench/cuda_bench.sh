#!/usr/bin/env bash
# The one script a GPU session runs: GPU tests, kernel benchmarks, end-to-end pp/tg of the 2B4T-shape random
# model on the GPU, and the in-run torch baselines; everything goes to one results file.
#
#   bench/cuda_bench.sh --bundle   (on a build machine without a GPU) builds the CUDA targets and packs them with
#                                  their shared libraries into build/cuda-bundle.tar.xz (the GPU image has no
#                                  fmt/CLI11/gtest/OpenBLAS dev packages, so it cannot build the project itself)
#   bench/cuda_bench.sh            (on the GPU machine) unpacks that bundle when present, else builds with CMake,
#                                  then runs everything; results in $OUT (if set) or bench/results/.
# Takes about 5 minutes on an H100 (most of it the 2B4T random model's generation and torch.compile).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [[ "${1:-}" == "--bundle" ]]; then
  set -e
  cmake --preset release -DBITNET_CUDA=ON >/dev/null
  nice cmake --build --preset release -j"${JOBS:-2}" --target bitnet_cli bitnet_cuda_tests bitnet_cuda_kernel_bench
  rm -rf build/cuda-bundle && mkdir -p build/cuda-bundle/bin build/cuda-bundle/lib
  cp build/release/bitnet build/release/tests/cuda/bitnet_cuda_tests build/release/bench/bitnet_cuda_kernel_bench \
     build/cuda-bundle/bin/
  strip build/cuda-bundle/bin/*
  # Every shared library but the C library itself (the GPU image's glibc is newer, so ours need not travel).
  ldd build/cuda-bundle/bin/* | awk '/=>/ {print $3}' | sort -u | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
    | xargs -I{} cp -L {} build/cuda-bundle/lib/
  tar -C build -cJf build/cuda-bundle.tar.xz cuda-bundle
  ls -la build/cuda-bundle.tar.xz
  echo "carry build/cuda-bundle.tar.xz to the GPU machine and run bench/cuda_bench.sh there"
  exit 0
fi

RESULTS_DIR=${OUT:-$ROOT/bench/results}
mkdir -p "$RESULTS_DIR"
RESULTS="$RESULTS_DIR/cuda_bench_$(date +%Y%m%d_%H%M%S).md"
exec > >(tee "$RESULTS") 2>&1
echo "# bitnet CUDA benchmark, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || echo "nvidia-smi failed"

if [[ -f build/cuda-bundle.tar.xz ]]; then
  tar -C build -xJf build/cuda-bundle.tar.xz
  BIN=$ROOT/build/cuda-bundle/bin
  export LD_LIBRARY_PATH=$ROOT/build/cuda-bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "using the prebuilt bundle (build/cuda-bundle.tar.xz)"
else
  echo "no bundle: building with CMake (needs fmt, CLI11, GoogleTest, OpenBLAS, PCRE2, nlohmann-json dev packages)"
  if ! { cmake --preset release -DBITNET_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native >/dev/null &&
         cmake --build --preset release -j"$(nproc)" --target bitnet_cli bitnet_cuda_tests bitnet_cuda_kernel_bench; }; then
    echo "BUILD FAILED: make a bundle on a build machine (bench/cuda_bench.sh --bundle) and carry it"; exit 1
  fi
  BIN=$ROOT/build/release
  cp build/release/tests/cuda/bitnet_cuda_tests build/release/bench/bitnet_cuda_kernel_bench build/release/ 2>/dev/null
fi

status=0
echo; echo "## GPU tests (every kernel vs the CPU reference; whole model vs the CPU engine)"
timeout 300 "$BIN/bitnet_cuda_tests" --gtest_brief=0 2>&1 | grep -vE '^\[ +(RUN|OK) ' || status=1
echo; echo "## Kernel benchmarks (CUDA-graph replay over rotating copies > L2)"
timeout 180 "$BIN/bitnet_cuda_kernel_bench" || status=1
echo; echo "## End to end: 2B4T-shape random model on the GPU (pp512, tg128 at ctx <= 640)"
timeout 300 "$BIN/bitnet" bench --random 2b4t --device cuda -p 512 -n 128 -r 3 || status=1
timeout 300 "$BIN/bitnet" bench --random 2b4t --device cuda --head int8 -p 0 -n 128 -r 3 || status=1
echo; echo "## Baselines in the same run (torch bf16 matmul; HF BitNetForCausalLM bf16, random weights)"
if command -v python3 >/dev/null; then timeout 420 python3 bench/cuda_torch_baseline.py 128 || status=1
else echo "torch baseline skipped: no python3"; fi
echo; echo "results: $RESULTS (exit status $status)"
exit $status
