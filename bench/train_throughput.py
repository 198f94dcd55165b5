#!/usr/bin/env python3
"""Training throughput (tokens/s) of one BitNet b1.58 shape: `bitnet train` against PyTorch on the same
machine, same threads, same model, same BitLinear STE definition (the one in tests/golden/), same AdamW and
clipping, byte-level data, a fixed number of steps. Prints a small table and one JSON line.

    .venv/bin/python bench/train_throughput.py [--threads 1] [--steps 10] [--shape small|4x] [--reps 5] [--bitnet build/release/bitnet]

Needs torch in .venv (scripts/setup.sh installs it). Both sides count every step's wall time after
one warm-up step; bitnet's figure is its own reported tokens/s over the run minus that warm-up.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))

SHAPES = {
    "small": dict(vocab_size=256, hidden_size=256, intermediate_size=688, num_layers=4, num_heads=8, num_kv_heads=4,
                  rope_theta=10000.0, rms_norm_eps=1e-5, activation="relu2", tie_embeddings=True),
}
# 4x the parameters of the small shape: twice the width, twice the feed-forward width.
SHAPES["4x"] = dict(SHAPES["small"], hidden_size=512, intermediate_size=1376)
SHAPE = SHAPES["small"]
SEQ, BATCH, LR = 128, 8, 1e-3


def make_text(path, n=400_000):
    import random
    rng = random.Random(0)
    words = "the of and to in ternary weight model learns latent precision straight through estimator".split()
    with open(path, "w") as f:
        f.write(" ".join(rng.choice(words) for _ in range(n // 6)))


def bench_bitnet(binary, workdir, threads, steps):
    cfg = {"model": {k: SHAPE[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads",
                                            "num_kv_heads", "tie_embeddings")},
           "data": {"train": "train.txt", "seq_len": SEQ, "batch_size": BATCH},
           "train": {"steps": steps + 1, "schedule": {"type": "cosine", "peak_lr": LR, "warmup_steps": 0}},
           "output": {"dir": "out", "log_every": 1, "checkpoint_every": 1000000}}
    with open(os.path.join(workdir, "run.json"), "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), BITNET_THREADS=str(threads))
    subprocess.run([binary, "train", "-c", os.path.join(workdir, "run.json"), "-q", "-t", str(threads)], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    rows = open(os.path.join(workdir, "out", "train_log.csv")).read().strip().splitlines()[1:]
    elapsed = [float(r.split(",")[7]) for r in rows]
    return SEQ * BATCH * steps / (elapsed[-1] - elapsed[0])  # steps 1..N, after the warm-up step 0


def bench_torch(workdir, threads, steps):
    import torch
    import torch.nn.functional as F
    import make_bitnet_golden as ref
    torch.set_num_threads(threads)
    data = torch.tensor(list(open(os.path.join(workdir, "train.txt"), "rb").read()), dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    params = ref.make_params(gen, SHAPE)
    decay = [v for k, v in params.items() if "norm" not in k and "embed" not in k]
    no_decay = [v for k, v in params.items() if "norm" in k or "embed" in k]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=LR,
                            betas=(0.9, 0.95), eps=1e-8)
    times = []
    for step in range(steps + 1):
        starts = torch.randint(0, data.numel() - SEQ - 1, (BATCH,), generator=gen)
        x = torch.stack([data[s:s + SEQ] for s in starts])
        y = torch.stack([data[s + 1:s + SEQ + 1] for s in starts])
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(ref.forward(params, x, SHAPE).view(-1, SHAPE["vocab_size"]), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    return SEQ * BATCH * steps / sum(times[1:]), torch.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--shape", choices=list(SHAPES), default="small")
    ap.add_argument("--reps", type=int, default=1, help="interleaved repetitions; medians are reported")
    ap.add_argument("--bitnet", default=os.path.join(HERE, "..", "build", "release", "bitnet"))
    a = ap.parse_args()
    global SHAPE
    SHAPE = SHAPES[a.shape]
    ours_all, theirs_all = [], []
    with tempfile.TemporaryDirectory() as d:
        make_text(os.path.join(d, "train.txt"))
        for _ in range(a.reps):  # interleaved, so that a slow spell of the machine hits both sides
            ours_all.append(bench_bitnet(a.bitnet, d, a.threads, a.steps))
            theirs, version = bench_torch(d, a.threads, a.steps)
            theirs_all.append(theirs)
    ours, theirs = statistics.median(ours_all), statistics.median(theirs_all)
    ratio = statistics.median(o / t for o, t in zip(ours_all, theirs_all))
    print(f"shape {a.shape}: hidden {SHAPE['hidden_size']}, {SHAPE['num_layers']} layers, ffn {SHAPE['intermediate_size']}, "
          f"heads {SHAPE['num_heads']}/{SHAPE['num_kv_heads']}, vocab {SHAPE['vocab_size']}, batch {BATCH} x seq {SEQ}, "
          f"{a.threads} thread(s), {a.steps} steps, median of {a.reps}")
    print(f"  bitnet train      {ours:10.0f} tokens/s")
    print(f"  torch {version:11s} {theirs:10.0f} tokens/s   (bitnet / torch, median of pairs = {ratio:.2f})")
    print(json.dumps({"shape": a.shape, "threads": a.threads, "steps": a.steps, "reps": a.reps,
                      "bitnet_tokens_per_s": round(ours), "torch_tokens_per_s": round(theirs),
                      "ratio": round(ratio, 3), "bitnet_all": [round(x) for x in ours_all],
                      "torch_all": [round(x) for x in theirs_all], "torch": version}))

if __name__ == "__main__":
    main()
