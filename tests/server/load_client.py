"""A bounded-time load test for `bitnet serve`, on asyncio sockets (no HTTP library between it and the server,
so it can also send broken requests and hang up mid-stream).

Each of `clients` workers loops until the deadline, choosing at random: a streamed chat or text completion
(measuring time to first token and counting tokens from the usage chunk), a streamed request whose client
hangs up after a few events, or a malformed request. Usable from pytest (run_load) or by hand:
    python tests/server/load_client.py PORT [seconds] [clients]
"""
import asyncio
import json
import random
import statistics
import sys
import time


class Stats:
    def __init__(self):
        self.completed = 0          # generations answered to the end
        self.tokens = 0             # completion tokens of those
        self.ttft = []              # seconds to the first event with text
        self.rejected_busy = 0      # 503 with every slot busy and the queue full
        self.disconnects = 0
        self.malformed = 0
        self.failures = []          # anything the server must never do


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    return status, headers


async def read_body(reader, headers):
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        async for chunk in chunks(reader):
            body += chunk
        return body
    return await reader.readexactly(int(headers.get("content-length", "0")))


async def chunks(reader):
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


def request_bytes(path, body: bytes, extra=b""):
    return (b"POST %s HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n%s\r\n" % (path.encode(), len(body), extra)) + body


async def streamed(port, rng, stats, hang_up_after=None):
    chat = rng.random() < 0.5
    body = {"max_tokens": rng.randint(8, 48), "stream": True, "stream_options": {"include_usage": True},
            "seed": rng.randint(0, 1 << 30), "repeat_penalty": 1.5}
    if chat:
        path = "/v1/chat/completions"
        body["messages"] = [{"role": "user", "content": "Write about " + rng.choice(["cats", "rivers", "ships", "stars"])}]
    else:
        path = "/v1/completions"
        body["prompt"] = "Once upon a time " * rng.randint(1, 20)
    if hang_up_after is not None:
        body["max_tokens"] = 4096
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(path, json.dumps(body).encode()))
        status, headers = await read_head(reader)
        if status != 200:
            payload = await read_body(reader, headers)
            if status == 503:
                stats.rejected_busy += 1
                await asyncio.sleep(0.05)  # Retry-After says 1 s; a short pause keeps a busy client from spinning
            else:
                stats.failures.append(f"{path}: HTTP {status}: {payload[:200]!r}")
            return
        events, first, usage, buf = 0, None, None, b""
        async for chunk in chunks(reader):
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                if not event.startswith(b"data: "):
                    continue
                data = event[6:]
                if data == b"[DONE]":
                    continue
                j = json.loads(data)
                if "error" in j:
                    stats.failures.append(f"error event: {j}")
                    continue
                if j.get("usage"):
                    usage = j["usage"]
                if j["choices"]:
                    c = j["choices"][0]
                    text = c["delta"].get("content") if chat else c["text"]
                    if text and first is None:
                        first = time.monotonic() - t0
                events += 1
                if hang_up_after is not None and events >= hang_up_after:
                    stats.disconnects += 1
                    return  # closing the socket without reading on
        if usage is None:
            stats.failures.append(f"{path}: stream ended without a usage chunk")
            return
        stats.completed += 1
        stats.tokens += usage["completion_tokens"]
        if first is not None:
            stats.ttft.append(first)
    finally:
        writer.close()


MALFORMED = [
    lambda: request_bytes("/v1/completions", b"{not json"),
    lambda: request_bytes("/v1/chat/completions", b'{"messages": "nope"}'),
    lambda: request_bytes("/v1/completions", b'{"prompt": "a", "temperature": 1e999}'),
    lambda: request_bytes("/v1/completions", b'{"prompt": "a", "top_p": -1}'),
    lambda: request_bytes("/v1/completions", b'{"prompt": "\xff\xfe\xfd"}'),
    lambda: request_bytes("/v1/completions", b'{"prompt": [1, 2, 99999999]}'),
    lambda: request_bytes("/v1/completions", b"[" * 5000),
    lambda: request_bytes("/v1/completions", b'{"prompt": "' + b"word " * 300000 + b'"}'),   # > 1 MiB: 413
    lambda: b"GARBAGE / HTTP/9.9\r\n\r\n",
    lambda: b"POST /v1/completions HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"prompt\":",  # then hangs up
]


async def malformed(port, rng, stats):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(rng.choice(MALFORMED)())
        await writer.drain()
        if rng.random() < 0.2:
            return  # hang up without reading
        try:
            status, headers = await asyncio.wait_for(read_head(reader), 0.5)
            await read_body(reader, headers)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            stats.malformed += 1
            return  # the server may close a connection it cannot parse, or wait for a body that never comes
        if status >= 500:
            stats.failures.append(f"malformed request got HTTP {status}")
        stats.malformed += 1
    except ConnectionError:
        stats.malformed += 1  # the server closed a connection that sent over its body limit
    finally:
        writer.close()


async def worker(port, seed, deadline, stats):
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        r = rng.random()
        try:
            if r < 0.7:
                await streamed(port, rng, stats)
            elif r < 0.85:
                await streamed(port, rng, stats, hang_up_after=rng.randint(1, 3))
            else:
                await malformed(port, rng, stats)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            stats.failures.append(f"connection broke: {e!r}")


async def run_load_async(port, seconds, clients, seed):
    stats = Stats()
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    await asyncio.gather(*(worker(port, seed + i, deadline, stats) for i in range(clients)))
    elapsed = time.monotonic() - t0
    ttft = sorted(stats.ttft)

    def pct(p):
        return ttft[min(len(ttft) - 1, int(p * len(ttft)))] if ttft else float("nan")
    report = {
        "seconds": round(elapsed, 2), "clients": clients, "completed": stats.completed,
        "requests_per_s": round(stats.completed / elapsed, 2), "tokens_per_s": round(stats.tokens / elapsed, 1),
        "ttft_p50_ms": round(1000 * pct(0.5), 1), "ttft_p99_ms": round(1000 * pct(0.99), 1),
        "ttft_mean_ms": round(1000 * statistics.fmean(ttft), 1) if ttft else None,
        "rejected_busy": stats.rejected_busy, "disconnects": stats.disconnects, "malformed": stats.malformed,
        "failures": stats.failures[:20], "failure_count": len(stats.failures),
    }
    return report


def run_load(port, seconds=20.0, clients=12, seed=1):
    return asyncio.run(run_load_async(port, seconds, clients, seed))


if __name__ == "__main__":
    port = int(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    print(json.dumps(run_load(port, seconds, clients), indent=1))
