# The README's two commands. Both run the idempotent set-up first.
JOBS ?= 2
.PHONY: run test setup release python asan bench bench-attention bench-depth bench-grammar bench-check bench-baseline clean fuzz soak soak-asan

setup:
	@scripts/setup.sh

release: setup
	cmake --preset release >/dev/null
	cmake --build --preset release -j$(JOBS)

# The Python package (bitnet, python/) built into .venv with pybind11 and scikit-build-core from setup.sh.
python: setup
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) .venv/bin/python -m pip install -q --no-build-isolation --no-deps .

# The main job: text from the bundled model, a 2M-parameter BitNet b1.58 trained by this project on the King
# James Bible (models/README.md; scripts/train_kjv.sh re-trains it).
# Only what it needs: the build's Debian packages (no Python, no torch) and the CLI target.
run:
	@scripts/setup.sh build
	cmake --preset release >/dev/null
	cmake --build --preset release -j$(JOBS) --target bitnet_cli
	./build/release/bitnet run -m models/kjv-bitnet-2m.gguf -p "And God said" -n 64 --seed 1

# Everything that must pass: release unit tests, the Python package's tests (pytest), the same unit tests under
# ASan + UBSan, then the Arm build (g++-aarch64-linux-gnu) whose NEON kernels are tested under qemu-aarch64.
# The ASan build compiles at -O1 -g1 (the asan preset): the level ASan's authors advise, with line tables for the
# reports' file:line; half the compile time of -O2 -g, which kept a cold `make test` past 35 minutes on 2 cores.
test: release
	ctest --preset release -j$(JOBS)
	$(MAKE) python
	.venv/bin/python -m pytest python/tests -q
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$(JOBS)
	ctest --preset asan -j$(JOBS)
	cmake --preset aarch64 >/dev/null
	cmake --build --preset aarch64 -j$(JOBS)
	ctest --preset aarch64 -j$(JOBS)

bench: release
	./build/release/bench/bitnet_bench_core --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

# Attention's cost per decoded token at depth 0/1024/4096 (f16 and q8_0 cache), for 1 and 8 layers of the 2B-4T
# attention shape, and in a 512-token prefill (bench/bench_attention.cpp).
bench-attention: release
	./build/release/bench/bitnet_bench_attention --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

# Whole-model decode (2B-4T shape, random weights, q8_0 cache) at depth 0 and 4096, repetitions interleaved at random so
# that both depths meet the same minutes of the machine's bandwidth (bench/bench_depth.cpp); a few minutes.
bench-depth: release
	./build/release/bench/bitnet_bench_depth --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true \
		--benchmark_report_aggregates_only=true

# The grammar sampler's cost per token on Llama-3's and GPT-2's vocabularies (bench/bench_grammar.cpp).
bench-grammar: release
	./build/release/bench/bitnet_bench_grammar --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

# The regression gate (docs/reports.md): the ternary and head kernels (Google Benchmark, 5 repetitions) and the
# end-to-end 2B4T-shape bench against the baselines committed for this machine kind (bench/baselines/); fails on a
# slowdown beyond BENCH_MAX_REGRESSION that the repetitions' noise does not explain (a test that looks slower is
# measured again first). Reports with charts land in build/bench-check/. Not part of `make test`.
# bench-baseline records new baselines on a quiet machine of the kind (then commit bench/baselines/).
BENCH_MAX_REGRESSION ?= 10%
BENCH_KERNELS = TernaryGemv/.*/avx512/2/|TernaryGemm/.*/avx512/2/128/
BENCH_E2E = --random 2b4t -p 128 -n 32 -r 5 -t 2
bench-check: release
	@mkdir -p build/bench-check
	./build/release/bench/bitnet_bench_ternary --benchmark_filter='$(BENCH_KERNELS)' --benchmark_repetitions=5 \
	  --benchmark_format=json --benchmark_out=build/bench-check/kernels.json >/dev/null
	@status=0; \
	./build/release/bitnet report build/bench-check/kernels.json -o build/bench-check/kernels.html \
	  --baseline bench/baselines/kernels.json --max-regression $(BENCH_MAX_REGRESSION) || status=$$?; \
	./build/release/bitnet bench $(BENCH_E2E) --report build/bench-check/e2e.html \
	  --baseline bench/baselines/e2e.json --max-regression $(BENCH_MAX_REGRESSION) || status=$$?; \
	exit $$status

bench-baseline: release
	@mkdir -p bench/baselines
	./build/release/bench/bitnet_bench_ternary --benchmark_filter='$(BENCH_KERNELS)' --benchmark_repetitions=5 \
	  --benchmark_format=json --benchmark_out=bench/baselines/kernels.json >/dev/null
	./build/release/bitnet bench $(BENCH_E2E) -o json > bench/baselines/e2e.json

# libFuzzer targets (clang++), FUZZ_SECONDS each: the GGUF, safetensors and config.json readers, GGUF tokenizers,
# chat templates (parse + render), tokenizer.json (+ tokenizer_config.json), training configs, checkpoint headers,
# grammars (GBNF, JSON Schema), the Hub's repository listing and ONNX files. An input that runs past 30 s is a
# finding (a hang), not a stall of the loop. New inputs go to build/fuzz/corpus_*; the committed seeds in
# tests/fuzz/corpus/ are only read.
FUZZ_SECONDS ?= 60
fuzz: SHELL := /bin/bash
fuzz:
	cmake -S tests/fuzz -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build/fuzz -j$(JOBS)
	@for t in gguf gguf_tokenizer safetensors config jinja train_config checkpoint grammar tokenizer_json hub_listing onnx; do \
	  mkdir -p build/fuzz/corpus_$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crash_$$t- build/fuzz/corpus_$$t tests/fuzz/corpus/$$t 2>&1 \
	    | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# The server under 10 minutes of mixed and hostile traffic (tests/soak/soak.py: 1,000 slow-trickle connections,
# malformed, oversized and abandoned requests beside normal clients); reports latencies, RSS and leaks and fails
# when a target is missed. soak-asan: 2 minutes against the AddressSanitizer build. Neither is part of `make test`.
SOAK_SECONDS ?= 600
soak: release
	.venv/bin/python tests/soak/soak.py --cli build/release/bitnet --seconds $(SOAK_SECONDS) --json build/soak.json

soak-asan: setup
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$(JOBS) --target bitnet_cli
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 .venv/bin/python tests/soak/soak.py --cli build/asan/bitnet \
	  --seconds 120 --warmup 20 --sanitized --json build/soak-asan.json

clean:
	rm -rf build
