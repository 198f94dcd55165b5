"""1,000 load/unload cycles of a small model leak nothing: the library's allocation counters return to their
baseline and the process RSS stays flat after a warm-up."""
import gc
import os

import bitnet

CYCLES = 1000
WARMUP = 50


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cycle(path: str) -> None:
    llm = bitnet.Llama(path, n_ctx=64, verbose=False, seed=1)
    assert llm.tokenize(b"hi")
    del llm


def cycles_then_settle(path: str, n: int) -> tuple[dict, int]:
    """n load/unload cycles, then garbage and cached memory released: the library's counters and the RSS."""
    for _ in range(n):
        cycle(path)
    gc.collect()
    bitnet.release_cached_memory()
    return bitnet.memory_stats(), rss_bytes()


def test_load_unload_cycles_leak_nothing(tiny_model):
    path = str(tiny_model)
    base, rss0 = cycles_then_settle(path, WARMUP)
    after, rss1 = cycles_then_settle(path, CYCLES)
    assert after["allocations"] > base["allocations"]  # the cycles did allocate through the counted allocator
    assert after["live_bytes"] == base["live_bytes"]
    assert after["live_allocations"] == base["live_allocations"]
    growth = rss1 - rss0
    print(f"\n{CYCLES} cycles: RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB ({growth / 1024:+.0f} KiB), "
          f"live bytes {base['live_bytes']} -> {after['live_bytes']}")
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over {CYCLES} cycles"


def thread_count() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def test_abandoned_streams_stop_and_free_their_threads(tiny_model):
    llm = bitnet.Llama(str(tiny_model), n_ctx=256, verbose=False, seed=1)
    base = thread_count()
    for i in range(200):
        it = llm("Once upon a time", max_tokens=100, stream=True)
        if i % 2:
            next(it)  # started, then dropped mid-way
        del it  # refcount -> 0: a started generator runs its finally (close); an unstarted one drops the C++
        # stream, whose destructor stops and joins the worker
    gc.collect()
    assert thread_count() == base
    assert llm("Once upon a time", max_tokens=2)["usage"]["completion_tokens"] >= 1  # the engine is free
