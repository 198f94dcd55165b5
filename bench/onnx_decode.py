#!/usr/bin/env python3
"""Decode speed of an exported model in ONNX Runtime beside the engine's, same machine, same threads, same run.

    .venv/bin/python bench/onnx_decode.py MODEL.gguf [--threads 2] [--depth 64] [--steps 32] [--reps 5]

Exports MODEL to ONNX (`bitnet export --onnx`, external data when large), then alternates, `--reps` times:
ONNX Runtime (CPU provider, intra_op_num_threads = --threads, default graph optimizations) decoding --steps tokens
one at a time after a --depth-token prompt through past_key_values, and `bitnet bench -p 0 -n STEPS -d DEPTH
-t THREADS -r 1`. Prints the medians (ms per decode step) and their ratio, and JSON with -o.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = os.environ.get("BITNET_CLI", str(ROOT / "build" / "release" / "bitnet"))


def ort_decode_ms(path, threads, depth, steps):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    t0 = time.perf_counter()
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0
    ins = {i.name: i for i in s.get_inputs()}
    layers = sum(1 for n in ins if n.startswith("past_key_values.") and n.endswith(".key"))
    kv, hd = ins["past_key_values.0.key"].shape[1], ins["past_key_values.0.key"].shape[3]
    outs = [o.name for o in s.get_outputs()]

    def run(ids, past, start):
        ids = np.array([ids], np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones((1, start + ids.shape[1]), np.int64),
                "position_ids": np.arange(start, start + ids.shape[1], dtype=np.int64)[None]}
        for i, (k, v) in enumerate(past):
            feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = k, v
        r = dict(zip(outs, s.run(None, feed)))
        return r["logits"], [(r[f"present.{i}.key"], r[f"present.{i}.value"]) for i in range(layers)]

    z = np.zeros((1, kv, 0, hd), np.float32)
    logits, past = run(list(range(1, depth + 1)) if depth else [1], [(z, z)] * layers, 0)
    pos = max(depth, 1)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        logits, past = run([int(logits[0, -1].argmax())], past, pos)
        times.append(time.perf_counter() - t)
        pos += 1
    return 1000 * statistics.median(times), load_s


def engine_decode_ms(model, threads, depth, steps):
    r = subprocess.run([CLI, "bench", "-m", str(model), "-p", "0", "-n", str(steps), "-d", str(depth), "-t", str(threads),
                        "-r", "1", "-o", "json"], capture_output=True, text=True, check=True)
    rows = json.loads(r.stdout)
    tps = rows[0]["avg_ts"]
    return 1000.0 / tps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--onnx", help="an already exported .onnx of MODEL (default: export to a temporary directory)")
    ap.add_argument("-o", "--output", help="write the figures as JSON here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        onnx_path = a.onnx
        if onnx_path is None:
            onnx_path = pathlib.Path(d) / "model.onnx"
            t0 = time.perf_counter()
            subprocess.run([CLI, "export", a.model, "--onnx", str(onnx_path)], check=True)
            print(f"export: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        ort_ms, eng_ms, load = [], [], []
        for rep in range(a.reps):
            o, ls = ort_decode_ms(onnx_path, a.threads, a.depth, a.steps)
            e = engine_decode_ms(a.model, a.threads, a.depth, a.steps)
            ort_ms.append(o), eng_ms.append(e), load.append(ls)
            print(f"rep {rep + 1}: onnxruntime {o:.2f} ms/token, bitnet {e:.2f} ms/token", file=sys.stderr)
    import onnxruntime
    res = {"model": str(a.model), "threads": a.threads, "depth": a.depth, "steps": a.steps, "reps": a.reps,
           "onnxruntime_version": onnxruntime.__version__,
           "onnxruntime_ms_per_token": statistics.median(ort_ms), "bitnet_ms_per_token": statistics.median(eng_ms),
           "onnxruntime_session_load_s": statistics.median(load)}
    res["bitnet_speedup"] = res["onnxruntime_ms_per_token"] / res["bitnet_ms_per_token"]
    print(f"decode after {a.depth} tokens, {a.threads} threads, median of {a.reps}: onnxruntime "
          f"{res['onnxruntime_ms_per_token']:.2f} ms/token ({1000 / res['onnxruntime_ms_per_token']:.1f} t/s), bitnet "
          f"{res['bitnet_ms_per_token']:.2f} ms/token ({1000 / res['bitnet_ms_per_token']:.1f} t/s): bitnet "
          f"{res['bitnet_speedup']:.1f}x")
    if a.output:
        pathlib.Path(a.output).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
