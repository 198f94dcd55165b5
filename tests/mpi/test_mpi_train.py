"""Data-parallel training under MPI (`mpirun -np N bitnet train`), checked against one process:

- N ranks with per-rank batch b compute, bit for bit, what one process computes with N accumulation steps of b
  rows (the same rows): for N = 2 with MPI's all-reduce (x0 + x1 = x1 + x0), for any N with
  `"reduction": "ordered"` (rank-order sums). Against one process taking all N*b rows in one pass the curves agree
  to 1e-6 for the first steps and then part by up to ~4e-5: a latent weight on a ternary rounding tie flips under
  a last-bit change of the gradient's summation order, as quantization-aware training does with any change of
  order. Hence exact equality where the order is the same and 1e-3 where it is not.
- gradient accumulation and data parallelism compose; a run checkpointed under 2 ranks resumes under 1 (the data
  position and the optimizer state are global); only rank 0 writes; a rank that dies or stops ends the job with
  an error naming it, never a hang.

BITNET_CLI names the built binary; skipped with a message when mpirun is missing or the build has no MPI.
"""
import csv
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLI = os.environ.get("BITNET_CLI", str(ROOT / "build" / "release" / "bitnet"))
MPIRUN = shutil.which("mpirun")
STEPS = 20

if MPIRUN is None:
    pytest.skip("mpirun is not installed (scripts/setup.sh installs openmpi-bin)", allow_module_level=True)
if "mpi" not in subprocess.run([CLI, "info", "--json"], capture_output=True, text=True).stdout:
    pytest.skip("this build of bitnet has no MPI (libopenmpi-dev was missing when it was configured)",
                allow_module_level=True)

# Open MPI in a container, as root, with more ranks than cores: allowed explicitly, shared memory without CMA.
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1",
           BITNET_THREADS="1", OMPI_MCA_btl="self,vader", OMPI_MCA_plm_rsh_agent="")


def write_config(d, batch=8, accum=1, steps=STEPS, stop_after=None, reduction=None):
    text = d / "train.txt"
    if not text.exists():
        words = "in the beginning god created the heaven and the earth and the earth was without form".split()
        text.write_text(" ".join(words[(i * 7 + i // 3) % len(words)] for i in range(6000)))
    cfg = {"model": {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 128, "num_layers": 2, "num_heads": 4,
                     "num_kv_heads": 2},
           "data": {"train": str(text), "seq_len": 32, "batch_size": batch},
           "train": {"steps": steps, "grad_accum": accum, "schedule": {"type": "cosine", "peak_lr": 3e-3, "warmup_steps": 2}},
           "output": {"dir": str(d / "out"), "log_every": 1, "checkpoint_every": 5}}
    if stop_after is not None:
        cfg["output"]["stop_after"] = stop_after
    if reduction is not None:
        cfg["train"]["reduction"] = reduction
    (d / "run.json").write_text(json.dumps(cfg))
    return d / "run.json"


def train(cfg, ranks, *extra, check=True, timeout=300, env=None):
    cmd = [CLI, "train", "-c", str(cfg), "-q", "-t", "1", *extra]
    if ranks > 1:
        cmd = [MPIRUN, "-np", str(ranks), "--oversubscribe", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or ENV)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def losses(cfg):
    out = pathlib.Path(json.loads(pathlib.Path(cfg).read_text())["output"]["dir"])
    with open(out / "train_log.csv") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def rank_pids(mpirun_pid):
    """The bitnet processes mpirun started (its children), from /proc: no dependency on procps."""
    pids = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if int(fields[1]) == mpirun_pid and comm == "bitnet":
            pids.append(int(stat.parent.name))
    return sorted(pids)


def relative(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))


def run(d, ranks, **kw):
    d.mkdir(parents=True, exist_ok=True)
    cfg = write_config(d, **kw)
    train(cfg, ranks)
    return losses(cfg)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process: all 8 rows in one pass, and as N accumulation steps of 8 / N rows."""
    d = tmp_path_factory.mktemp("n1")
    return {"single": run(d / "single", 1), 2: run(d / "acc2", 1, batch=4, accum=2),
            4: run(d / "acc4", 1, batch=2, accum=4)}


@pytest.mark.parametrize("ranks,reduction", [(2, "allreduce"), (2, "ordered"), (4, "ordered"), (4, "allreduce")])
def test_n_ranks_against_one_process(reference, tmp_path, ranks, reduction):
    got = run(tmp_path, ranks, reduction=reduction)
    assert len(got) == STEPS
    single = relative(got, reference["single"])
    acc = relative(got, reference[ranks])
    print(f"{ranks} ranks ({reduction}): against 1 process with {ranks} accumulation steps {acc:.1e}, "
          f"with the batch in one pass {single:.1e} (first 3 steps {relative(got[:3], reference['single'][:3]):.1e})")
    if reduction == "ordered" or ranks == 2:
        assert got == reference[ranks], "bit for bit the accumulated micro-batches"
    assert acc < 1e-3 and single < 1e-3
    assert relative(got[:3], reference["single"][:3]) < 1e-6
    assert got[-1] < got[0] - 0.5, "it learns"
    # Only rank 0 wrote: one log row per step, one checkpoint, one final model.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["run.json", "train_log.csv", "loss.svg", "report.html", "checkpoint.safetensors", "model.safetensors"])


def test_accumulation_and_ranks_compose(reference, tmp_path):
    # 2 ranks x 2 micro-batches of 2 rows = 8 rows a step: the same rows as one process's 4 micro-batches of 2.
    got = run(tmp_path, 2, batch=4, accum=2)
    err = relative(got, reference[4])
    print(f"2 ranks x 2 accumulation steps against 1 process x 4: {err:.1e}")
    assert err < 1e-3 and relative(got[:3], reference[4][:3]) < 1e-6


def test_resume_with_another_rank_count(reference, tmp_path):
    # 10 steps on 2 ranks, then 10 more in one process accumulating the same rows: the 2-rank run's curve.
    got_2 = run(tmp_path / "a", 2, stop_after=10)
    assert len(got_2) == 10
    cfg = write_config(tmp_path / "a", batch=4, accum=2)
    train(cfg, 1, "--resume")
    assert losses(cfg) == reference[2], "resumed on 1 rank: bit for bit"
    # The same config under another rank count: the data position and the optimizer state carry over.
    run(tmp_path / "b", 1, stop_after=10)
    cfg = write_config(tmp_path / "b")
    train(cfg, 2, "--resume")
    got = losses(cfg)
    assert got[:10] == reference["single"][:10] and relative(got, reference["single"]) < 1e-3


def test_batch_must_split_across_ranks(tmp_path):
    cfg = write_config(tmp_path, batch=3)
    r = train(cfg, 2, check=False)
    assert r.returncode != 0 and "batch_size 3" in r.stderr and "2 ranks" in r.stderr


def running_job(tmp_path, env):
    """A long 2-rank run, once it has logged 2 steps: (the mpirun process, the two ranks' pids)."""
    cfg = write_config(tmp_path, steps=100000)
    p = subprocess.Popen([MPIRUN, "-np", "2", "--oversubscribe", CLI, "train", "-c", str(cfg), "-q", "-t", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = tmp_path / "out" / "train_log.csv"
    deadline = time.time() + 60
    while (not log.exists() or len(log.read_text().splitlines()) < 3) and time.time() < deadline:
        time.sleep(0.1)
    ranks = rank_pids(p.pid)
    assert len(ranks) == 2, ranks
    return p, ranks


def test_a_rank_that_stops_ends_the_job_by_timeout(tmp_path):
    """SIGSTOP one rank: the other's all-reduce times out (BITNET_COLLECTIVE_TIMEOUT) and the job ends."""
    p, ranks = running_job(tmp_path, dict(ENV, BITNET_COLLECTIVE_TIMEOUT="3"))
    os.kill(ranks[-1], signal.SIGSTOP)
    try:
        out, err = p.communicate(timeout=60)
    finally:
        for pid in ranks:
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert p.returncode != 0
    assert "did not complete in 3 s" in err and "rank 0 of 2" in err, err[-2000:]


def test_a_rank_that_dies_ends_the_job_naming_it(tmp_path):
    p, ranks = running_job(tmp_path, ENV)
    os.kill(ranks[-1], signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert p.returncode != 0
    assert "rank 1" in (out + err), (out + err)[-2000:]
