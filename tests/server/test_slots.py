"""llama-server's slot routes: GET /slots, and a slot's cache saved to a file, erased, restored (into another slot,
or another server process) and reused: answers after a restore equal answers computed from an empty cache."""
import pytest

PROMPT = " ".join(f"w{i}" for i in range(60))


def complete(s, **kw):
    status, body, _ = s.request("POST", "/v1/completions", {"prompt": PROMPT, "max_tokens": 6, "temperature": 0, **kw})
    assert status == 200, body
    return body


def slot_with_cache(s):
    status, slots, _ = s.request("GET", "/slots")
    assert status == 200
    return max(slots, key=lambda x: x["n_cached_tokens"])


def test_save_erase_restore_and_reuse(start_server, tmp_path):
    s = start_server("-np", "2", "-c", "256", "-n", "16", "--slot-save-path", str(tmp_path))
    cold = complete(s, cache_prompt=False)
    full = slot_with_cache(s)
    assert full["n_cached_tokens"] >= cold["usage"]["prompt_tokens"] and not full["is_processing"]
    status, saved, _ = s.request("POST", f"/slots/{full['id']}?action=save", {"filename": "p.bin"})
    assert status == 200 and saved["n_saved"] == full["n_cached_tokens"] and (tmp_path / "p.bin").stat().st_size == saved["n_written"]
    status, erased, _ = s.request("POST", f"/slots/{full['id']}?action=erase")
    assert erased["n_erased"] == full["n_cached_tokens"]
    assert slot_with_cache(s)["n_cached_tokens"] == 0
    other = 1 - full["id"]
    status, restored, _ = s.request("POST", f"/slots/{other}?action=restore", {"filename": "p.bin"})
    assert status == 200 and restored["n_restored"] == full["n_cached_tokens"], restored
    warm = complete(s)
    assert warm["usage"]["prompt_tokens_details"]["cached_tokens"] == cold["usage"]["prompt_tokens"] - 1
    assert warm["choices"][0]["text"] == cold["choices"][0]["text"]

    # Another process with the same model and context restores it too.
    t = start_server("-np", "1", "-c", "256", "-n", "16", "--slot-save-path", str(tmp_path))
    assert t.request("POST", "/slots/0?action=restore", {"filename": "p.bin"})[0] == 200
    again = complete(t)
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] == cold["usage"]["prompt_tokens"] - 1
    assert again["choices"][0]["text"] == cold["choices"][0]["text"]


def test_refusals(start_server, server, tmp_path):
    s = start_server("-np", "1", "-c", "256", "--slot-save-path", str(tmp_path))
    for name in ("../x.bin", "/etc/passwd", ".hidden", "a/b"):
        status, body, _ = s.request("POST", "/slots/0?action=save", {"filename": name})
        assert status == 400 and "plain file name" in body["error"]["message"], name
    assert s.request("POST", "/slots/0?action=restore", {"filename": "missing.bin"})[0] == 404
    assert s.request("POST", "/slots/7?action=erase")[0] == 400
    assert s.request("POST", "/slots/0?action=fly")[0] == 400
    assert s.request("GET", "/slots/0")[0] == 405
    assert s.request("POST", "/slots/0?action=save", {"filename": "empty.bin"})[0] == 400  # nothing cached yet
    (tmp_path / "bad.bin").write_bytes(b"BNSLOT1\0" + (5).to_bytes(8, "little") + b"\1\2")
    status, body, _ = s.request("POST", "/slots/0?action=restore", {"filename": "bad.bin"})
    assert status == 400 and "bad.bin" in body["error"]["message"]
    (tmp_path / "junk.bin").write_bytes(b"not a slot file at all")
    assert s.request("POST", "/slots/0?action=restore", {"filename": "junk.bin"})[0] == 400
    # The shared server has no --slot-save-path.
    status, body, _ = server.request("POST", "/slots/0?action=save", {"filename": "x.bin"})
    assert status == 501 and "--slot-save-path" in body["error"]["message"]
