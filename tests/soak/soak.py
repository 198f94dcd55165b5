#!/usr/bin/env python3
"""Soak test of `bitnet serve` (make soak; make soak-asan for the short run under AddressSanitizer).

One server on loopback, two phases of the same normal traffic (chat, completions, streams: the "normal clients"):
first alone, then beside an attack: 1,000 slow-trickle connections (one head byte per second each, reconnecting
when the server drops them), idle connections, malformed and oversized requests (chunked included), clients that
disconnect mid-stream, pipelined and HTTP/1.0 clients. It reports the normal clients' /health latency and
16-token time to first token (p50/p99) in both phases, requests served, RSS over time, then checks that no slot or
connection leaked, and that SIGTERM ends the server within the grace period plus 1 s.

Targets (exit status 1 when one is missed): /health p99 under attack <= 50 ms; TTFT p99 under attack <= 2x the
unattacked p99; RSS after the soak within 32 MiB of RSS after warm-up; the server exits 0; no slot, queue entry or
connection left.

    tests/soak/soak.py --cli build/release/bitnet --seconds 600 [--json report.json]
"""
import argparse
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class Soak:
    def __init__(self, cli, model, grace):
        self.log = tempfile.NamedTemporaryFile(prefix="bitnet-soak-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([cli, "serve", "-m", model, "--port", "0", "-np", "4", "-c", "512", "-n", "64",
                                      "--queue", "64", "-t", "2", "--shutdown-grace", str(grace),
                                      "--max-connections", "4096"], stdout=self.log, stderr=subprocess.STDOUT)
        self.grace = grace
        deadline = time.time() + 120
        self.port = None
        while time.time() < deadline and self.port is None:
            text = open(self.log.name, errors="replace").read()
            for line in text.splitlines():
                if "ready on http://" in line:
                    self.port = int(line.rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                sys.exit(f"soak: the server exited at start:\n{text}")
            time.sleep(0.1)
        if self.port is None:
            sys.exit("soak: the server did not become ready")
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.phase = "warmup"
        self.samples = {}  # (phase, kind) -> [seconds]
        self.served = 0
        self.errors = []

    def record(self, kind, seconds):
        with self.lock:
            self.samples.setdefault((self.phase, kind), []).append(seconds)
            self.served += 1

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
            out = {}
            for line in r.read().decode().splitlines():
                if line and not line.startswith("#"):
                    k, v = line.rsplit(" ", 1)
                    out[k] = float(v)
            return out

    # ---- normal clients -------------------------------------------------------------------------------------
    def normal_client(self, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            kind = rng.choice(["health", "stream", "completion", "chat"])
            try:
                if kind == "health":
                    t0 = time.monotonic()
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=30) as r:
                        r.read()
                    self.record("health", time.monotonic() - t0)
                elif kind == "stream":
                    self.record("ttft", self.ttft())
                else:
                    body = ({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16} if kind == "chat"
                            else {"prompt": "Once upon a time", "max_tokens": 16})
                    path = "/v1/chat/completions" if kind == "chat" else "/v1/completions"
                    t0 = time.monotonic()
                    req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", json.dumps(body).encode(),
                                                 {"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=60) as r:
                        json.loads(r.read())
                    self.record(kind, time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001 - every failure of a normal client is a finding
                with self.lock:
                    self.errors.append(f"{self.phase} {kind}: {e}")
            time.sleep(rng.uniform(0.0, 0.05))

    def ttft(self):
        """Seconds from sending a 16-token streaming completion to its first event."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": 16, "stream": True}).encode()
        t0 = time.monotonic()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        first = None
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            if first is None and b"data: " in got:
                first = time.monotonic() - t0
        s.close()
        if first is None or b"[DONE]" not in got:
            raise RuntimeError(f"stream ended early: {got[:200]!r}")
        return first

    # ---- the attack ------------------------------------------------------------------------------------------
    def trickle(self, n):
        socks = {}
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000000
        pos = {}
        while not self.stop.is_set():
            for i in range(n):
                s = socks.get(i)
                if s is None:
                    try:
                        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                        s.setblocking(False)
                        socks[i], pos[i] = s, 0
                    except OSError:
                        continue
                try:
                    s.send(head[pos[i]:pos[i] + 1])
                    pos[i] += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:  # dropped by the server's head deadline: come back
                    s.close()
                    socks[i] = None
            self.stop.wait(1.0)
        for s in socks.values():
            if s:
                s.close()

    def hostile(self, seed):
        rng = random.Random(seed)
        bad = [b"GARBAGE\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
               b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{not json}",
               b"GET /health HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n\r\n",
               b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
               b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + (b"10000\r\n" + b"x" * 0x10000 + b"\r\n") * 40,
               b"GET /health HTTP/1.0\r\n\r\n",
               b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 5 + b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"]
        body = json.dumps({"prompt": "Hello", "max_tokens": 64, "stream": True}).encode()
        stream = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d"
                  b"\r\n\r\n" % len(body) + body)
        idle = []
        while not self.stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                if rng.random() < 0.3:  # a streaming client that leaves mid-answer
                    s.sendall(stream)
                    s.recv(256)
                    s.close()
                elif rng.random() < 0.1:  # connects and says nothing
                    idle.append(s)
                    if len(idle) > 50:
                        idle.pop(0).close()
                else:
                    try:
                        s.sendall(rng.choice(bad))
                        s.settimeout(10)
                        while s.recv(65536):
                            pass
                    except OSError:
                        pass
                    s.close()
            except OSError:
                pass
            time.sleep(rng.uniform(0.0, 0.02))
        for s in idle:
            s.close()

    def run(self, seconds, warmup, trickles):
        rss = []
        normal = [threading.Thread(target=self.normal_client, args=(i,)) for i in range(4)]
        for t in normal:
            t.start()
        time.sleep(warmup)
        rss_warm = self.rss_mib()
        rss.append((0.0, rss_warm))
        with self.lock:
            self.phase = "attack"
        attack = [threading.Thread(target=self.trickle, args=(trickles,))]
        attack += [threading.Thread(target=self.hostile, args=(100 + i,)) for i in range(3)]
        for t in attack:
            t.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(5)
            rss.append((time.monotonic() - t0, self.rss_mib()))
        self.stop.set()
        for t in normal + attack:
            t.join()
        time.sleep(3)  # let closes and cancellations settle
        m = self.metrics()
        rss_after = self.rss_mib()
        t_sig = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=self.grace + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "killed"
        stop_seconds = time.monotonic() - t_sig
        report = {"seconds": seconds, "requests_served_normal": self.served, "normal_client_errors": self.errors[:20],
                  "normal_client_error_count": len(self.errors), "rss_mib_after_warmup": rss_warm,
                  "rss_mib_after_soak": rss_after, "rss_mib_max": max(r for _, r in rss), "rss_over_time": rss,
                  "exit_status": code, "sigterm_to_exit_seconds": stop_seconds,
                  "slots_busy_after": m.get("llamacpp:requests_processing"),
                  "queued_after": m.get("llamacpp:requests_deferred"),
                  "connections_open_after": m.get("bitnet:http_connections_open"),
                  "requests_total": m.get("bitnet:requests_total"),
                  "timed_out_requests": m.get("bitnet:http_requests_timed_out_total"),
                  "generations_cancelled": m.get("bitnet:generations_cancelled_total"), "latency_ms": {}}
        for (phase, kind), v in sorted(self.samples.items()):
            report["latency_ms"][f"{phase}.{kind}"] = {"n": len(v), "p50": 1000 * percentile(v, 50),
                                                       "p99": 1000 * percentile(v, 99)}
        lat = report["latency_ms"]
        checks = {
            "health_p99_under_attack_le_50ms": lat.get("attack.health", {}).get("p99", 1e9) <= 50,
            "ttft_p99_under_attack_le_2x": lat.get("attack.ttft", {}).get("p99", 1e9)
            <= 2 * lat.get("warmup.ttft", {}).get("p99", 0),
            "rss_within_32mib": rss_after - rss_warm <= 32,
            "exit_0": code == 0,
            "sigterm_within_grace_plus_1s": stop_seconds <= self.grace + 1,
            "no_leaked_slots": m.get("llamacpp:requests_processing") == 0 and m.get("llamacpp:requests_deferred") == 0,
            "no_leaked_connections": (m.get("bitnet:http_connections_open") or 0) <= 1,  # the /metrics request
            "normal_clients_never_failed": not self.errors,
        }
        report["checks"] = checks
        return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "release", "bitnet"))
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=30)
    ap.add_argument("--trickle", type=int, default=1000)
    ap.add_argument("--json")
    ap.add_argument("--sanitized", action="store_true",
                    help="the server is an ASan build: its quarantine holds freed memory (up to 256 MiB), so RSS is "
                         "not compared; LeakSanitizer's report at exit (a non-zero status) is the leak check")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    vocab = os.path.join(os.path.dirname(ROOT), "shared", "data", "tokenizers", "ggml-vocab-gpt-2.gguf")
    model = os.path.join(tempfile.mkdtemp(prefix="bitnet-soak-"), "tiny.gguf")
    subprocess.run([args.cli, "make-model", "--arch", "tiny", "--vocab", vocab, "--seed", "3", model], check=True,
                   capture_output=True)
    soak = Soak(args.cli, model, grace=5)
    report = soak.run(args.seconds, args.warmup, args.trickle)
    if args.sanitized:
        report["checks"].pop("rss_within_32mib")
        log = open(soak.log.name, errors="replace").read()
        report["checks"]["no_sanitizer_report"] = "Sanitizer" not in log and "runtime error" not in log
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    for k, v in report["latency_ms"].items():
        print(f"soak: {k:20s} n={v['n']:6d} p50 {v['p50']:8.1f} ms  p99 {v['p99']:8.1f} ms")
    print(f"soak: normal requests served {report['requests_served_normal']}, all requests {report['requests_total']}, "
          f"slow heads dropped {report['timed_out_requests']}, streams cancelled {report['generations_cancelled']}")
    print(f"soak: RSS after warm-up {report['rss_mib_after_warmup']:.1f} MiB, max {report['rss_mib_max']:.1f}, "
          f"after {report['rss_mib_after_soak']:.1f}; SIGTERM -> exit {report['exit_status']} in "
          f"{report['sigterm_to_exit_seconds']:.2f} s; server log {soak.log.name}")
    failed = [k for k, ok in report["checks"].items() if not ok]
    for k, ok in report["checks"].items():
        print(f"soak: {'ok  ' if ok else 'FAIL'} {k}")
    if report["normal_client_errors"]:
        print("soak: normal client errors:", *report["normal_client_errors"], sep="\n  ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
