"""Fixtures for the server tests: a random tiny model with GPT-2's vocabulary (made by `bitnet make-model`) and
`bitnet serve` processes started on a free port, stopped with SIGTERM (which must exit cleanly).

BITNET_CLI names the built `bitnet` binary (ctest passes it); BITNET_SHARED_DATA the shared test data folder.
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = os.environ.get("BITNET_CLI", str(ROOT / "build" / "release" / "bitnet"))
SHARED = pathlib.Path(os.environ.get("BITNET_SHARED_DATA", ROOT.parent / "shared" / "data"))
VOCAB = SHARED / "tokenizers" / "ggml-vocab-gpt-2.gguf"
SANITIZED = os.environ.get("BITNET_SANITIZED", "0") == "1"


class Server:
    """A running `bitnet serve`: its URL, process, and small HTTP helpers that never raise on HTTP errors."""

    def __init__(self, args, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w+b")
        self.proc = subprocess.Popen([CLI, "serve", "--port", "0", *args], stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = pathlib.Path(log_path).read_text(errors="replace")
            m = re.search(r"ready on https?://[^:]+:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"bitnet serve exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("bitnet serve did not become ready in 60 s")
        self.url = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, raw=None, timeout=60):
        """(status, parsed JSON or text, headers)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json", **(headers or {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, payload, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, payload, hdrs = e.code, e.read(), e.headers
        text = payload.decode("utf-8")
        try:
            return status, json.loads(text), hdrs
        except ValueError:
            return status, text, hdrs

    def metrics(self, headers=None):
        status, text, _ = self.request("GET", "/metrics", headers=headers)
        assert status == 200, text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def rss_kib(self):
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self, timeout=30):
        """SIGTERM, then the exit status (the server must shut down by itself)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("bitnet serve did not stop within %d s of SIGTERM" % timeout)
        self.log.close()
        return self.proc.returncode

    def log_text(self):
        return pathlib.Path(self.log_path).read_text(errors="replace")


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    if not os.path.exists(CLI):
        pytest.skip(f"the bitnet CLI is not built: {CLI}")
    if not VOCAB.exists():
        pytest.skip(f"no GPT-2 vocabulary in {SHARED}")
    path = tmp_path_factory.mktemp("model") / "tiny-gpt2.gguf"
    subprocess.run([CLI, "make-model", "--arch", "tiny", "--vocab", str(VOCAB), "--seed", "3", str(path)],
                   check=True, capture_output=True)
    return str(path)


@pytest.fixture(scope="session")
def start_server(model_path, tmp_path_factory):
    """start_server(*flags) -> Server; every server still running at the end is stopped and must exit 0."""
    servers = []

    def start(*args):
        log = tmp_path_factory.mktemp("server") / "serve.log"
        s = Server(["-m", model_path, "-t", "1", *args], str(log))
        servers.append(s)
        return s

    yield start
    for s in servers:
        if s.proc.poll() is None:
            assert s.stop() == 0, s.log_text()


@pytest.fixture(scope="session")
def server(start_server):
    """The shared server: 2 slots, a 256-position context, a 64-token cap."""
    return start_server("-np", "2", "-c", "256", "-n", "64")
