"""The CLI's HTML reports as a reader sees them: each kind is made by the CLI, loaded in headless Chromium
(browser_check.render), and must load without console errors or network requests, contain its charts, and draw
every one of them (not a blank or data-less frame).

The screenshots are kept as test artefacts in build/report-screenshots/<kind>.png (with the report beside it as
<kind>.html), to look at after a run. BITNET_CLI names the `bitnet` binary (default build/release/bitnet).
Needs Chromium and Pillow (scripts/setup.sh installs both); about half a minute.
"""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

import browser_check as bc

if bc.find_chromium() is None:
    pytest.skip("chromium not installed: scripts/setup.sh installs it", allow_module_level=True)
pytest.importorskip("PIL", reason="Pillow not installed: scripts/setup.sh installs it")

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = os.environ.get("BITNET_CLI", str(ROOT / "build" / "release" / "bitnet"))
MODEL = ROOT / "models" / "kjv-bitnet-2m.gguf"
LLAMA_BENCH_SAMPLE = ROOT / "tests" / "report" / "data" / "llama_bench_sample.json"
SCREENSHOTS = ROOT / "build" / "report-screenshots"
WIDTH = 1200

if not os.path.exists(CLI):
    pytest.skip(f"the CLI is not built: {CLI} (set BITNET_CLI)", allow_module_level=True)


def cli(*args, stdout_to=None, timeout=300):
    """Run `bitnet ARGS` from the repository root; fail the test with its output when it fails."""
    cmd = [CLI, *map(str, args)]
    out = open(stdout_to, "w") if stdout_to else None
    try:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=out or subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
    finally:
        if out:
            out.close()
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{(proc.stdout or '')[-2000:]}{proc.stderr[-3000:]}")
    return proc


def check_report(html_path, kind, min_charts):
    """Render the report, keep the screenshot, and check errors, chart count and that every chart is drawn."""
    html_path = pathlib.Path(html_path)
    assert html_path.is_file(), f"{kind}: the CLI wrote no report at {html_path}"
    text = html_path.read_text(encoding="utf-8")
    assert text.lstrip()[:15].lower() == "<!doctype html>", f"{kind}: not an HTML document: {text[:80]!r}"
    assert "<script" not in text.lower(), f"{kind}: the report must hold no script"

    png = html_path.with_suffix(".png")
    result = bc.render(html_path, png, width=WIDTH)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, SCREENSHOTS / f"{kind}.png")  # before the assertions: most useful when they fail
    shutil.copyfile(html_path, SCREENSHOTS / f"{kind}.html")

    assert result.console_errors == [], f"{kind}: errors in the browser:\n" + "\n".join(result.console_errors)
    assert len(result.charts) >= min_charts, (
        f"{kind}: {len(result.charts)} svg.chart elements, expected at least {min_charts} "
        f"(screenshot: {SCREENSHOTS / (kind + '.png')})")
    problems = []
    for box in result.charts:
        ok, detail = bc.chart_is_drawn(png, box, dpr=result.device_pixel_ratio)
        if not ok:
            problems.append(detail)
        if box["x"] < 0 or box["x"] + box["width"] > WIDTH + 0.5:
            problems.append(f"{detail}: sticks out of the {WIDTH} px window (x {box['x']}, width {box['width']})")
    assert not problems, (f"{kind}: charts not drawn (screenshot: {SCREENSHOTS / (kind + '.png')}):\n"
                          + "\n".join(problems))
    return result


# ---- inputs, made once per module ----

TEXT = "".join(f"In the beginning was the word {i % 7}, and the word was ternary: minus one, zero or plus one. "
               for i in range(300))  # 26 kB of bytes


def _config(name, quant, schedule):
    """A byte-level model (vocab 256, no tokenizer) small enough to train 30 steps in well under a second."""
    return {"model": {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 2, "num_kv_heads": 2},
            "quant": quant,
            "data": {"train": "train.txt", "validation": "val.txt", "seq_len": 32, "batch_size": 4, "seed": 1},
            "train": {"steps": 30, "seed": 0, "schedule": schedule},
            "output": {"dir": f"run-{name}", "log_every": 1, "eval_every": 10, "eval_batches": 2,
                       "checkpoint_every": 10}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two training runs of the same data: ternary QAT and full precision. {name: run dir}."""
    d = tmp_path_factory.mktemp("train")
    (d / "train.txt").write_text(TEXT)
    (d / "val.txt").write_text(TEXT[:3000])
    configs = {
        "ternary": _config("ternary", {"weight": "ternary", "activation": "int8/per_row"},
                           {"type": "two_stage", "peak_lr": 1e-2, "warmup_steps": 3}),
        "fp": _config("fp", {"weight": "f32", "activation": "f32"},
                      {"type": "cosine", "peak_lr": 5e-3, "warmup_steps": 3, "min_lr": 5e-4}),
    }
    out = {}
    for name, config in configs.items():
        path = d / f"{name}.json"
        path.write_text(json.dumps(config, indent=1))
        cli("train", "-c", path)
        out[name] = d / f"run-{name}"
        assert (out[name] / "run.json").is_file(), f"`bitnet train` wrote no run dir at {out[name]}"
    return out


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory):
    """Two `bitnet bench -o json` results of the same model (A and B)."""
    d = tmp_path_factory.mktemp("bench")
    paths = []
    for name in ("A", "B"):
        path = d / f"{name}.json"
        cli("bench", "-m", MODEL, "-p", 16, "-n", 8, "-r", 3, "-o", "json", stdout_to=path)
        rows = json.loads(path.read_text())
        assert isinstance(rows, list) and rows, f"bench -o json wrote {path.read_text()[:200]!r}"
        paths.append(path)
    return paths


# ---- one test per report kind ----

def test_bench_report(tmp_path):
    out = tmp_path / "bench.html"
    cli("bench", "-m", MODEL, "-p", 16, "-n", 8, "-r", 3, "-t", "1,2", "--report", out)
    check_report(out, "bench", min_charts=3)


def test_bench_comparison_report(tmp_path, bench_json):
    out = tmp_path / "bench-comparison.html"
    cli("report", *bench_json, LLAMA_BENCH_SAMPLE, "-o", out)
    check_report(out, "bench-comparison", min_charts=1)


def test_training_report(runs):
    check_report(runs["ternary"] / "report.html", "training", min_charts=4)


def test_training_comparison_report(tmp_path, runs):
    out = tmp_path / "training-comparison.html"
    cli("report", runs["ternary"], runs["fp"], "-o", out)
    check_report(out, "training-comparison", min_charts=2)


def test_quantization_report(tmp_path, runs):
    out = tmp_path / "quantization.html"
    cli("analyze", runs["ternary"], "--report", out)
    check_report(out, "quantization", min_charts=3)
