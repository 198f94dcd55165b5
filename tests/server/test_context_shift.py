"""Context shift (llama.cpp's --keep): a full context forgets half of what is not kept instead of ending the
answer, in the server (--context-shift) and in `bitnet run -cnv`, whose conversation also drops its oldest turns
when it outgrows -c."""
import subprocess

from conftest import CLI


def test_server_context_shift(start_server):
    body = {"prompt": "Hello there", "max_tokens": 150, "temperature": 0, "ignore_eos": True, "repeat_penalty": 1.3}
    plain = start_server("-np", "1", "-c", "64", "-n", "200")
    status, r, _ = plain.request("POST", "/v1/completions", body)
    assert status == 200 and r["choices"][0]["finish_reason"] == "length" and r["usage"]["completion_tokens"] < 64
    shifting = start_server("-np", "1", "-c", "64", "-n", "200", "--context-shift", "--keep", "2")
    status, s, _ = shifting.request("POST", "/v1/completions", body)
    assert status == 200 and s["usage"]["completion_tokens"] == 150
    assert s["choices"][0]["text"].startswith(r["choices"][0]["text"])  # the same until the first shift
    assert shifting.metrics()["bitnet:context_shifts_total"] >= 2
    # The slot's cache record followed the shifts: a new request still answers as from scratch.
    again = shifting.request("POST", "/v1/completions", {**body, "max_tokens": 5})[1]
    cold = shifting.request("POST", "/v1/completions", {**body, "max_tokens": 5, "cache_prompt": False})[1]
    assert again["choices"][0]["text"] == cold["choices"][0]["text"]


def test_chat_outgrowing_the_context_drops_old_turns(model_path):
    lines = "".join(f"Tell me about topic number {i} in some detail please\n" for i in range(12))
    r = subprocess.run([CLI, "run", "-m", model_path, "-cnv", "-c", "128", "-n", "24", "--temp", "0", "-p", "Be brief."],
                       input=lines, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "[context full: the oldest turn was dropped]" in r.stderr
