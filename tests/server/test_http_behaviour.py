"""The server's HTTP contract beyond the happy path: OpenAI-shaped errors, limits, bad input, the API key, the
bounded queue, clients that go away, and shutdown on SIGTERM."""
import json
import subprocess
import socket
import threading
import time

import pytest

CHAT = {"messages": [{"role": "user", "content": "Hi"}]}


def assert_error(status, body, want_status, want_type, words=""):
    assert status == want_status, body
    assert set(body) == {"error"}, body
    assert body["error"]["type"] == want_type
    assert body["error"]["code"] == want_status
    assert words in body["error"]["message"], body


def test_health_models_tokenize_detokenize(server):
    assert server.request("GET", "/health")[:2] == (200, {"status": "ok"})
    status, body, _ = server.request("POST", "/tokenize", {"content": "Hello world", "with_pieces": True})
    assert status == 200 and body == {"tokens": [{"id": 15496, "piece": "Hello"}, {"id": 995, "piece": " world"}]}
    assert server.request("POST", "/detokenize", {"tokens": [15496, 995]})[1] == {"content": "Hello world"}
    assert_error(*server.request("POST", "/detokenize", {"tokens": [1, 10**9]})[:2], 400, "invalid_request_error", "vocabulary")


@pytest.mark.parametrize("patch,words", [
    ({"temperature": 1e6}, "temperature"), ({"temperature": -0.5}, "temperature"), ({"top_p": -1}, "top_p"),
    ({"top_k": -1}, "top_k"), ({"min_p": "NaN"}, "min_p"), ({"max_tokens": -3}, "max_tokens"),
    ({"frequency_penalty": 9}, "frequency_penalty"), ({"seed": "x"}, "seed"), ({"stop": [1]}, "stop"),
    ({"messages": []}, "messages"), ({"messages": [{"role": "user", "content": {"a": 1}}]}, "content"),
])
def test_out_of_range_and_mistyped_values_are_400(server, patch, words):
    assert_error(*server.request("POST", "/v1/chat/completions", {**CHAT, **patch})[:2], 400, "invalid_request_error", words)


def test_malformed_bodies(server):
    for raw in (b"{", b"[]", b"null", b'{"prompt": "\xff\xfe"}', b"\x00\x01", b"[" * 10000 + b"]" * 10000):
        status, body, _ = server.request("POST", "/v1/completions", raw=raw)
        assert_error(status, body, 400, "invalid_request_error")
    # NaN and infinities have no JSON spelling; 1e999 overflows a double.
    assert_error(*server.request("POST", "/v1/completions", raw=b'{"prompt":"a","temperature":NaN}')[:2], 400, "invalid_request_error")
    assert_error(*server.request("POST", "/v1/completions", raw=b'{"prompt":"a","temperature":1e999}')[:2], 400, "invalid_request_error")
    # An unknown field is never dropped in silence: 400 naming it. Metadata that changes nothing is fine.
    status, body, _ = server.request("POST", "/v1/completions", {"prompt": "a", "max_tokens": 2, "frobnicate": [1, {"x": 2}]})
    assert_error(status, body, 400, "invalid_request_error", "'frobnicate' is not supported")
    status, body, _ = server.request("POST", "/v1/completions", {"prompt": "a", "max_tokens": 2, "user": "u1", "model": "m", "cache_prompt": True})
    assert status == 200 and body["usage"]["completion_tokens"] <= 2
    assert_error(*server.request("GET", "/v2/nothing")[:2], 404, "not_found_error")
    # curl -d's default type is form-encoded: the body is read as JSON all the same (and this one is not JSON).
    status, body, _ = server.request("POST", "/v1/completions", raw=b"x" * 9000,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(status, body, 400, "invalid_request_error")


def test_prompt_longer_than_the_context_is_400(server):
    status, body, _ = server.request("POST", "/v1/completions", {"prompt": "hello " * 400, "max_tokens": 4})
    assert_error(status, body, 400, "invalid_request_error", "context holds 256")
    status, body, _ = server.request("POST", "/v1/completions", {"prompt": "hello " * 10, "max_tokens": 64})
    assert status == 200  # the budget is not the prompt's problem: generation ends at the context or the cap


def test_body_size_cap_is_413(start_server):
    s = start_server("--max-body", "2048")
    status, body, _ = s.request("POST", "/v1/completions", raw=json.dumps({"prompt": "a" * 5000}).encode())
    assert_error(status, body, 413, "invalid_request_error", "2048 bytes")
    assert s.request("POST", "/v1/completions", {"prompt": "a", "max_tokens": 1})[0] == 200


def test_api_key_on_every_route_but_health(start_server):
    s = start_server("--api-key", "sekrit")
    assert s.request("GET", "/health")[0] == 200
    routes = [("GET", "/v1/models", None), ("GET", "/metrics", None), ("POST", "/tokenize", {"content": "a"}),
              ("POST", "/detokenize", {"tokens": [1]}), ("POST", "/v1/completions", {"prompt": "a", "max_tokens": 1}),
              ("POST", "/v1/chat/completions", {**CHAT, "max_tokens": 1}), ("GET", "/props", None)]
    for method, path, body in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Api-Key": "sekri"}, {"Authorization": "sekrit"}):
            status, reply, _ = s.request(method, path, body, headers=headers)
            assert_error(status, reply, 401, "authentication_error")
        assert s.request(method, path, body, headers={"Authorization": "Bearer sekrit"})[0] == 200, path
        assert s.request(method, path, body, headers={"X-Api-Key": "sekrit"})[0] == 200, path
    # CORS preflight needs no key.
    status, _, headers = s.request("OPTIONS", "/v1/chat/completions")
    assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]


def test_binds_to_loopback_by_default(server):
    assert "http://127.0.0.1:" in server.log_text()


def open_stream(server, max_tokens=100000, path="/v1/completions"):
    """A raw streaming request; returns the socket once the first event has arrived."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    body = json.dumps({"prompt": "Hello", "max_tokens": max_tokens, "stream": True}).encode()
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                 % (path.encode(), len(body)) + body)
    got = b""
    while b"data: " not in got:
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk
    return sock, got


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_full_queue_is_503_and_a_client_that_leaves_frees_its_slot(start_server):
    s = start_server("-np", "1", "--queue", "0", "-c", "4096", "-n", "100000")
    sock, first = open_stream(s)
    assert first.startswith(b"HTTP/1.1 200")
    assert s.metrics()["llamacpp:requests_processing"] == 1
    status, body, headers = s.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 2})
    assert_error(status, body, 503, "unavailable_error", "busy")
    assert headers["Retry-After"] == "1"
    sock.close()  # the streaming client goes away mid-answer
    assert wait_for(lambda: s.metrics()["llamacpp:requests_processing"] == 0), "the slot was not freed"
    assert s.metrics()["bitnet:generations_cancelled_total"] == 1
    assert s.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 2})[0] == 200


def test_a_waiting_or_non_streaming_client_that_leaves_frees_its_place(start_server):
    s = start_server("-np", "1", "--queue", "2", "-c", "4096", "-n", "100000")
    running, _ = open_stream(s)
    # A non-streamed request waits in the queue, then its client leaves.
    waiting = socket.create_connection(("127.0.0.1", s.port))
    body = json.dumps({"prompt": "Hello", "max_tokens": 100000}).encode()
    waiting.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert wait_for(lambda: s.metrics()["llamacpp:requests_deferred"] == 1)
    waiting.close()
    assert wait_for(lambda: s.metrics()["llamacpp:requests_deferred"] == 0), "the queued request stayed"
    running.close()
    assert wait_for(lambda: s.metrics()["llamacpp:requests_processing"] == 0)
    # A non-streamed request that holds the slot, then leaves.
    holding = socket.create_connection(("127.0.0.1", s.port))
    holding.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert wait_for(lambda: s.metrics()["llamacpp:requests_processing"] == 1)
    holding.close()
    assert wait_for(lambda: s.metrics()["llamacpp:requests_processing"] == 0), "the slot was not freed"
    assert s.metrics()["bitnet:generations_cancelled_total"] == 3


def read_until_closed(sock):
    data = b""
    sock.settimeout(30)
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_sigterm_lets_requests_finish_and_tells_the_rest_why(start_server):
    s = start_server("-np", "2", "-c", "4096", "-n", "100000", "--shutdown-grace", "2")
    short, _ = open_stream(s, max_tokens=30)
    endless, _ = open_stream(s)
    replies = {}
    readers = [threading.Thread(target=lambda k=k, sock=sock: replies.__setitem__(k, read_until_closed(sock)))
               for k, sock in (("short", short), ("endless", endless))]
    for t in readers:
        t.start()
    t0 = time.monotonic()
    assert s.stop() == 0, s.log_text()
    for t in readers:
        t.join()
    assert time.monotonic() - t0 < 10
    assert b'"finish_reason":"length"' in replies["short"] and replies["short"].endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    assert b"the server is shutting down" in replies["endless"]
    assert "finishing the requests in flight" in s.log_text()


def test_serves_a_hugging_face_directory(tmp_path):
    """`serve -m DIR` takes a Hugging Face checkpoint as run/bench/perplexity do, and answers what the GGUF does."""
    import shutil

    from conftest import CLI, ROOT, Server

    kjv = ROOT / "models" / "kjv-bitnet-2m.gguf"
    d = tmp_path / "kjv-hf"
    d.mkdir()
    subprocess.run([CLI, "convert", str(kjv), "-o", str(d / "model.safetensors"), "-q"], check=True)
    shutil.copy(ROOT / "models" / "kjv-tokenizer.json", d / "tokenizer.json")
    s = Server(["-m", str(d), "-t", "1", "-c", "128", "-n", "8"], str(tmp_path / "serve.log"))
    try:
        status, body, _ = s.request("POST", "/v1/completions",
                                    {"prompt": "And God said", "max_tokens": 8, "temperature": 0})
        assert status == 200, body
        cli = subprocess.run([CLI, "run", "-m", str(kjv), "-p", "And God said", "-n", "8", "--temp", "0",
                              "--no-display-prompt", "-t", "1"], capture_output=True, text=True, check=True)
        assert body["choices"][0]["text"] == cli.stdout
        assert body["model"] == "kjv-hf"
    finally:
        assert s.stop() == 0, s.log_text()


def test_wrong_method_is_405_with_the_allowed_ones(server):
    status, body, headers = server.request("DELETE", "/v1/models")
    assert_error(status, body, 405, "invalid_request_error", "DELETE")
    assert headers["Allow"] == "OPTIONS, GET"
    status, _, headers = server.request("GET", "/v1/completions")
    assert status == 405 and headers["Allow"] == "OPTIONS, POST"
