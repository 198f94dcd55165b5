# The README's two commands. Both run the idempotent set-up first.
JOBS ?= 2
.PHONY: run test setup release asan bench clean

setup:
	@scripts/setup.sh

release: setup
	cmake --preset release >/dev/null
	cmake --build --preset release -j$(JOBS)

# The main job. Until the engine exists it is `bitnet info`.
run: release
	./build/release/bitnet info

# Everything that must pass: release unit tests, the same tests under ASan + UBSan, then the Arm build
# (g++-aarch64-linux-gnu) whose NEON kernels are tested under qemu-aarch64.
test: release
	ctest --preset release -j$(JOBS)
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$(JOBS)
	ctest --preset asan -j$(JOBS)
	cmake --preset aarch64 >/dev/null
	cmake --build --preset aarch64 -j$(JOBS)
	ctest --preset aarch64 -j$(JOBS)

bench: release
	./build/release/bench/bitnet_bench_core --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

clean:
	rm -rf build
