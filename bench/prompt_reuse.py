"""Time to first token of a repeated long prompt through `bitnet serve`, with the slot's cached prefix reused
(cache_prompt, the default) and without (cache_prompt: false). Streams the completion and times the first
content chunk; medians of N runs each, interleaved.

    .venv/bin/python bench/prompt_reuse.py MODEL.gguf [--tokens 1600] [--runs 5] [-t 2]
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--tokens", type=int, default=1600, help="prompt length in tokens (about)")
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("-t", "--threads", type=int, default=2)
ap.add_argument("--cli", default="build/release/bitnet")
args = ap.parse_args()

log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
proc = subprocess.Popen([args.cli, "serve", "-m", args.model, "--port", "0", "-t", str(args.threads), "-np", "1",
                         "-c", str(args.tokens + 256), "-n", "8"], stdout=log, stderr=subprocess.STDOUT)
url = None
for _ in range(1200):
    m = re.search(r"ready on (http://[^\s]+)", open(log.name).read())
    if m:
        url = m.group(1).rstrip("/")
        break
    if proc.poll() is not None:
        sys.exit(open(log.name).read())
    time.sleep(0.1)
if url is None:
    sys.exit("the server did not start")


def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=600)


# A prompt of about --tokens tokens: count with /tokenize, grow until long enough.
words = []
while True:
    words += [f"item{len(words)}" for _ in range(100)]
    prompt = " ".join(words)
    n = len(json.load(post("/tokenize", {"content": prompt}))["tokens"])
    if n >= args.tokens:
        break


def ttft(cache_prompt):
    t0 = time.perf_counter()
    with post("/v1/completions", {"prompt": prompt, "max_tokens": 4, "temperature": 0, "stream": True,
                                  "cache_prompt": cache_prompt}) as r:
        for line in r:
            if line.startswith(b"data: ") and b'"text"' in line:
                first = time.perf_counter() - t0
                r.read()
                return first
    raise RuntimeError("no token came")


ttft(True)  # fills the slot's cache
cold, warm = [], []
for _ in range(args.runs):
    cold.append(ttft(False))
    ttft(True)  # the cold run left the full prompt in the cache; reuse it
    warm.append(ttft(True))
proc.terminate()
proc.wait()
print(f"prompt: {n} tokens, {args.threads} threads, {args.runs} runs each")
print(f"time to first token, cache_prompt false: median {statistics.median(cold):.3f} s  (runs {', '.join(f'{x:.3f}' for x in cold)})")
print(f"time to first token, cache_prompt true:  median {statistics.median(warm):.3f} s  (runs {', '.join(f'{x:.3f}' for x in warm)})")
print(f"ratio: {statistics.median(cold) / statistics.median(warm):.0f}x")
