"""llama-server's own routes and flags beside the OpenAI ones: /completion (its {"content", "stop"} objects and
their stream), /apply-template, /infill, --chat-template(-file), -a, --api-key-file, -to and server-side
sampling defaults."""
import json
import urllib.request

import pytest


def test_native_completion(server):
    status, body, _ = server.request("POST", "/completion", {"prompt": "Hello", "n_predict": 5, "temperature": 0})
    assert status == 200, body
    assert body["stop"] is True and body["tokens_predicted"] == 5 and body["stop_type"] == "limit"
    assert body["tokens_evaluated"] >= 1 and isinstance(body["content"], str)
    oa = server.request("POST", "/v1/completions", {"prompt": "Hello", "max_tokens": 5, "temperature": 0})[1]
    assert body["content"] == oa["choices"][0]["text"]
    # A stop word ends it with stop_type "word" and the word named.
    word = body["content"][2:4] if len(body["content"]) >= 4 else body["content"]
    status, stopped, _ = server.request("POST", "/completion", {"prompt": "Hello", "n_predict": 5, "temperature": 0, "stop": [word]})
    assert stopped["stop_type"] == "word" and stopped["stopping_word"] == word
    assert stopped["content"] == body["content"][:body["content"].index(word)]


def test_native_stream_has_no_done_marker(server):
    req = urllib.request.Request(server.url + "/completion", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"prompt": "Hello", "n_predict": 6, "temperature": 0, "stream": True}).encode())
    with urllib.request.urlopen(req, timeout=60) as r:
        events = [line[6:] for line in r.read().decode().splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    objs = [json.loads(e) for e in events]
    assert all(o["stop"] is False for o in objs[:-1]) and objs[-1]["stop"] is True
    whole = server.request("POST", "/completion", {"prompt": "Hello", "n_predict": 6, "temperature": 0})[1]
    assert "".join(o["content"] for o in objs) == whole["content"]
    assert objs[-1]["tokens_predicted"] == 6


def test_apply_template_and_infill(server):
    status, body, _ = server.request("POST", "/apply-template", {"messages": [{"role": "user", "content": "Hi"}]})
    assert status == 200 and "Hi" in body["prompt"] and body["prompt"].rstrip().endswith("Assistant:")
    status, body, _ = server.request("POST", "/apply-template", {"messages": [], "x": 1})
    assert status == 400
    # GPT-2's vocabulary has no fill-in-the-middle tokens.
    status, body, _ = server.request("POST", "/infill", {"input_prefix": "def f(", "input_suffix": "):"})
    assert status == 501 and "fill-in-the-middle" in body["error"]["message"]


def test_chat_template_file_alias_key_file_and_sampling_defaults(start_server, tmp_path):
    tmpl = tmp_path / "t.jinja"
    tmpl.write_text("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<bot>{% endif %}")
    key = tmp_path / "key.txt"
    key.write_text("s3cret\nignored second line\n")
    s = start_server("--chat-template-file", str(tmpl), "-a", "my-model", "--api-key-file", str(key), "-to", "30",
                     "--temp", "0", "-n", "8")
    auth = {"Authorization": "Bearer s3cret"}
    assert s.request("POST", "/apply-template", {"messages": [{"role": "user", "content": "Hi"}]})[0] == 401
    status, body, _ = s.request("POST", "/apply-template", {"messages": [{"role": "user", "content": "Hi"}]}, headers=auth)
    assert body == {"prompt": "<user>Hi<bot>"}
    assert s.request("GET", "/props", headers=auth)[1]["chat_template"] == tmpl.read_text()
    status, body, _ = s.request("GET", "/v1/models", headers=auth)
    assert body["data"][0]["id"] == "my-model"
    # --temp 0 is the default of requests that do not say: two unseeded requests give the same text.
    a = s.request("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 8}, headers=auth)[1]
    b = s.request("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 8}, headers=auth)[1]
    assert a["choices"][0]["text"] == b["choices"][0]["text"]


@pytest.mark.parametrize("args,words", [
    (["--chat-template", "chatml"], "not a Jinja template"),
    (["--chat-template-file", "/nonexistent/t.jinja"], "/nonexistent/t.jinja"),
    (["--no-jinja"], "--no-jinja"),
    (["--temp", "-1"], "temperature"),
])
def test_bad_flags_are_errors(model_path, args, words):
    import subprocess
    from conftest import CLI
    r = subprocess.run([CLI, "serve", "-m", model_path, "--port", "0", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and words in r.stderr, r.stderr
