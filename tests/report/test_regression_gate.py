"""The benchmark regression gate (`bitnet report --baseline`, `bitnet bench --baseline`): test by test against a
baseline, noise-aware (the repetitions' spread), on the three JSON kinds it reads. Synthetic results with a known
spread make the verdicts deterministic; the real reruns on this machine kind are `make bench-check`'s."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = os.environ.get("BITNET_CLI", str(ROOT / "build" / "release" / "bitnet"))
if not os.path.exists(CLI):
    pytest.skip(f"the bitnet CLI is not built ({CLI})", allow_module_level=True)


def bitnet_rows(scale=1.0, spread=0.01, tests=("pp512", "tg128"), roofline=True):
    rows = []
    for t in tests:
        base = 130.0 if t.startswith("pp") else 31.0
        samples = [scale * base * (1 + spread * k) for k in (-2, -1, 0, 1, 2)]
        r = {"model": "r2b4t.gguf", "backend": "CPU avx512", "threads": 2, "test": t,
             "avg_ts": sum(samples) / 5, "stddev_ts": 0.0, "samples_ts": samples, "cpu_info": "AMD EPYC",
             "build_commit": "abc"}
        if roofline and t.startswith("tg"):
            r["samples_roofline_fraction"] = [s / base * 0.7 for s in samples]
            r["read_bandwidth_gb_per_s"] = 50.0
        rows.append(r)
    return rows


def gate(tmp_path, baseline, current, threshold="5%"):
    b, c = tmp_path / "base.json", tmp_path / "cur.json"
    b.write_text(json.dumps(baseline))
    c.write_text(json.dumps(current))
    p = subprocess.run([CLI, "report", "--baseline", str(b), str(c), "--max-regression", threshold],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def test_injected_slowdown_fails_and_a_rerun_passes(tmp_path):
    rc, out = gate(tmp_path, bitnet_rows(), bitnet_rows(scale=0.8))
    assert rc == 3, out
    assert out.count("REGRESSION") == 2 and "-20.0%" in out and "FAILED: 2 of 2" in out
    rc, out = gate(tmp_path, bitnet_rows(), bitnet_rows(scale=0.98, spread=0.012))  # a rerun: 2% slower
    assert rc == 0 and "REGRESSION" not in out and "passed" in out, out
    rc, out = gate(tmp_path, bitnet_rows(), bitnet_rows(scale=1.3))
    assert rc == 0 and out.count("faster") == 2, out  # pp by t/s, tg by its roofline fraction
    rc, out = gate(tmp_path, bitnet_rows(), bitnet_rows(scale=0.92), threshold="10%")
    assert rc == 0, out


def test_a_difference_within_the_noise_is_said_and_not_failed(tmp_path):
    rc, out = gate(tmp_path, bitnet_rows(spread=0.15), bitnet_rows(scale=0.85, spread=0.15))
    assert rc == 0 and "within the noise" in out, out


def test_decode_is_compared_by_roofline_fraction(tmp_path):
    # The machine's bandwidth halved (t/s halved) but decode reached the same share of it: not a regression.
    cur = bitnet_rows(tests=("tg128",))
    for r in cur:
        r["samples_ts"] = [s / 2 for s in r["samples_ts"]]
    rc, out = gate(tmp_path, bitnet_rows(tests=("tg128",)), cur)
    assert rc == 0 and "roofline" in out, out


def test_missing_tests_are_reported(tmp_path):
    rc, out = gate(tmp_path, bitnet_rows(), bitnet_rows(tests=("pp512",)))
    assert rc == 0 and "not measured in this run" in out, out


def test_google_benchmark_and_llama_bench_results(tmp_path):
    def gbench(scale):
        runs = [{"name": f"BM_Gemv/2560/{r}", "run_name": "BM_Gemv/2560", "run_type": "iteration", "repetitions": 5,
                 "threads": 1, "real_time": 100.0 / scale * (1 + 0.005 * r), "cpu_time": 100.0, "time_unit": "us",
                 "items_per_second": 1e6 * scale * (1 - 0.005 * r)} for r in range(5)]
        runs.append({"name": "BM_Gemv/2560_mean", "run_name": "BM_Gemv/2560", "run_type": "aggregate",
                     "aggregate_name": "mean", "real_time": 100.0, "time_unit": "us", "items_per_second": 1e6})
        return {"context": {"executable": "bitnet_bench_ternary", "num_cpus": 2, "mhz_per_cpu": 2600},
                "benchmarks": runs}
    rc, out = gate(tmp_path, gbench(1.0), gbench(0.75))
    assert rc == 3 and "BM_Gemv/2560" in out, out
    sample = json.loads((ROOT / "tests" / "report" / "data" / "llama_bench_sample.json").read_text())
    rc, out = gate(tmp_path, sample, sample)
    assert rc == 0 and "pp16 (t=2)" in out, out


def test_bad_inputs_are_errors_naming_them(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a benchmark"}')
    p = subprocess.run([CLI, "report", str(bad), "-o", str(tmp_path / "x.html")], capture_output=True, text=True)
    assert p.returncode == 1 and "bad.json" in p.stderr and "not a benchmark result" in p.stderr
    bad.write_text("[1, 2")
    p = subprocess.run([CLI, "report", str(bad), "-o", str(tmp_path / "x.html")], capture_output=True, text=True)
    assert p.returncode == 1 and "not valid JSON" in p.stderr
    p = subprocess.run([CLI, "report", str(bad)], capture_output=True, text=True)
    assert p.returncode == 1 and "nothing to do" in p.stderr
    # Flags that only mean something with a baseline are refused without one, not ignored.
    p = subprocess.run([CLI, "report", str(bad), "-o", str(tmp_path / "x.html"), "--max-regression", "3%"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "--max-regression requires --baseline" in p.stderr
    p = subprocess.run([CLI, "bench", "-m", str(ROOT / "models" / "kjv-bitnet-2m.gguf"), "-p", "4", "-n", "0", "--confirm", "1"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "--confirm requires --baseline" in p.stderr
    p = subprocess.run([CLI, "bench", "-m", str(ROOT / "models" / "kjv-bitnet-2m.gguf"), "-p", "4", "-n", "0", "-r", "1",
                        "--baseline", str(bad)], capture_output=True, text=True)
    assert p.returncode == 1 and "bad.json" in p.stderr
