#!/usr/bin/env python3
"""Data-parallel training throughput on this machine: `bitnet train` as 1 rank x T threads against
`mpirun -np R bitnet train` as R ranks x 1 thread (the same global batch, the same model and steps), alternated
--reps times; prints tokens/s (medians) and the share of rank 0's run spent waiting for gradient sums.

    .venv/bin/python bench/train_dp.py [--ranks 2] [--steps 20] [--reps 3] [--shape small|4x] [-o out.json]

Shapes: small = bench/train_throughput.py's (hidden 256, 4 layers, ffn 688, batch 8 x 128); 4x = four times
its parameters (hidden 512, 4 layers, ffn 1376).
"""
import argparse
import csv
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = os.environ.get("BITNET_CLI", str(ROOT / "build" / "release" / "bitnet"))
SHAPES = {
    "small": dict(vocab_size=256, hidden_size=256, intermediate_size=688, num_layers=4, num_heads=8, num_kv_heads=4),
    "4x": dict(vocab_size=256, hidden_size=512, intermediate_size=1376, num_layers=4, num_heads=8, num_kv_heads=4),
}
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_btl="self,vader")


def run(d, shape, steps, ranks, threads):
    out = d / f"out-{ranks}x{threads}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = {"model": SHAPES[shape], "data": {"train": str(d / "train.txt"), "seq_len": 128, "batch_size": 8},
           "train": {"steps": steps + 1, "schedule": {"type": "cosine", "peak_lr": 1e-3, "warmup_steps": 0}},
           "output": {"dir": str(out), "log_every": 1, "checkpoint_every": 1000000}}
    (d / "run.json").write_text(json.dumps(cfg))
    cmd = [CLI, "train", "-c", str(d / "run.json"), "-q", "-t", str(threads)]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "core", *cmd]
    env = dict(ENV, BITNET_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    with open(out / "train_log.csv") as f:
        rows = list(csv.DictReader(f))
    elapsed = [float(x["elapsed_s"]) for x in rows]
    tps = 8 * 128 * steps / (elapsed[-1] - elapsed[0])  # steps 1..N, after the warm-up step 0
    m = re.search(r"waited ([0-9.]+) s for gradient sums, ([0-9.]+)% of the run", r.stdout)
    return tps, (float(m.group(2)) if m else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--shape", choices=list(SHAPES), default="small")
    ap.add_argument("-o", "--output")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = pathlib.Path(tmp)
        words = "the of and to in ternary weight model learns latent precision straight through estimator".split()
        (d / "train.txt").write_text(" ".join(words[(i * 7 + i // 5) % len(words)] for i in range(70000)))
        one, many, wait = [], [], []
        for _ in range(a.reps):
            one.append(run(d, a.shape, a.steps, 1, a.ranks)[0])
            t, w = run(d, a.shape, a.steps, a.ranks, 1)
            many.append(t)
            wait.append(w)
    res = {"shape": a.shape, "steps": a.steps, "reps": a.reps,
           f"1_rank_x_{a.ranks}_threads_tokens_per_s": statistics.median(one),
           f"{a.ranks}_ranks_x_1_thread_tokens_per_s": statistics.median(many),
           "rank0_wait_share_percent": statistics.median(wait)}
    print(f"{a.shape} shape, batch 8 x 128, {a.steps} steps, median of {a.reps}: 1 rank x {a.ranks} threads "
          f"{statistics.median(one):.0f} tokens/s; {a.ranks} ranks x 1 thread {statistics.median(many):.0f} tokens/s "
          f"({statistics.median(many) / statistics.median(one):.2f}x); rank 0 waited for gradient sums "
          f"{statistics.median(wait):.1f}% of its run")
    if a.output:
        pathlib.Path(a.output).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
