"""`bitnet pull`, `-hf` and the huggingface_hub cache, against the fake Hub on loopback (conftest.py, fake_hub.py),
with the PyPI huggingface_hub package as the oracle both ways."""
import hashlib
import json
import os
import pathlib

import pytest

from conftest import CLI, KJV, bitnet

hf = pytest.importorskip("huggingface_hub", reason="the PyPI package huggingface_hub (scripts/setup.sh installs it)")

PROMPT = ["-p", "And God said", "-n", "8", "--seed", "1", "--temp", "0"]


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def cache_dir(env):
    return pathlib.Path(env["HF_HOME"]) / "hub"


def test_pull_places_files_where_huggingface_hub_finds_them(hub, env):
    out = bitnet(env, "pull", "bitnet-test/kjv-gguf").stdout.strip()
    repo = hub.repos["bitnet-test/kjv-gguf"]
    folder = cache_dir(env) / "models--bitnet-test--kjv-gguf"
    assert out == str(folder / "snapshots" / repo.commit / "kjv-2m-I2_S.gguf")  # the I2_S file is the default
    link = pathlib.Path(out)
    assert link.is_symlink() and os.readlink(link) == f"../../blobs/{repo.sha256('kjv-2m-I2_S.gguf')}"
    assert (folder / "refs" / "main").read_text() == repo.commit
    assert sha256(link) == sha256(KJV)
    assert not list((folder / "blobs").glob("*.incomplete"))
    # The oracle finds it, without the network.
    assert hf.try_to_load_from_cache("bitnet-test/kjv-gguf", "kjv-2m-I2_S.gguf", cache_dir=cache_dir(env)) == out
    hub.clear_log()
    got = hf.hf_hub_download("bitnet-test/kjv-gguf", "kjv-2m-I2_S.gguf", cache_dir=cache_dir(env), local_files_only=True)
    assert got == out and hub.requests() == []
    # Its cache scanner sees a well-formed repository.
    info = hf.scan_cache_dir(cache_dir(env))
    assert not info.warnings
    (r,) = info.repos
    assert r.repo_id == "bitnet-test/kjv-gguf" and r.size_on_disk == len(KJV.read_bytes())


def test_run_downloads_then_reuses_huggingface_hub_downloads(hub, env):
    # huggingface_hub downloads; bitnet uses its cache: no byte fetched again, offline or not.
    hf.hf_hub_download("bitnet-test/kjv-single", "ggml-model-i2_s.gguf", cache_dir=cache_dir(env), endpoint=hub.url)
    want = bitnet(env, "run", "-m", str(KJV), *PROMPT).stdout
    hub.clear_log()
    offline = bitnet({**env, "HF_HUB_OFFLINE": "1"}, "run", "-hf", "bitnet-test/kjv-single", *PROMPT)
    assert offline.stdout == want and hub.requests() == []
    online = bitnet(env, "run", "-hf", "bitnet-test/kjv-single", *PROMPT)
    assert online.stdout == want
    assert hub.requests("/cdn") == [], "the file in the cache was downloaded again"
    assert "from the cache" in online.stderr


def test_quant_tag_and_file_selection(hub, env):
    repo = hub.repos["bitnet-test/kjv-gguf"]
    out = bitnet(env, "pull", "bitnet-test/kjv-gguf:f16").stdout.strip()
    assert out.endswith("/kjv-2m-F16.gguf") and sha256(out) == repo.sha256("kjv-2m-F16.gguf")
    out = bitnet(env, "pull", "bitnet-test/kjv-gguf:README.md").stdout.strip()
    assert pathlib.Path(out).read_bytes() == repo.files["README.md"]
    # llama.cpp's -hf REPO -hff FILE spelling.
    r = bitnet(env, "run", "-hf", "bitnet-test/kjv-gguf", "-hff", "kjv-2m-F16.gguf", *PROMPT)
    assert r.stdout == bitnet(env, "run", "-m", str(KJV), *PROMPT).stdout
    bad = bitnet(env, "pull", "bitnet-test/kjv-gguf:q4_k_m", check=False)
    assert bad.returncode == 1 and "kjv-2m-I2_S.gguf" in bad.stderr and "kjv-2m-F16.gguf" in bad.stderr


def test_checkpoint_repository_downloads_only_what_the_engine_reads(hub, env):
    r = json.loads(bitnet(env, "pull", "bitnet-test/tiny-packed", "--json").stdout)
    assert sorted(r["files"]) == ["config.json", "model.safetensors"]  # no README, no remote code
    snap = pathlib.Path(r["model"])
    assert snap.is_dir() and snap.name == hub.repos["bitnet-test/tiny-packed"].commit
    assert r["downloaded_bytes"] == sum(len(hub.repos["bitnet-test/tiny-packed"].files[f]) for f in r["files"])
    # The oracle's snapshot_download of the same files lands on the same blobs (nothing new downloaded).
    hub.clear_log()
    got = hf.snapshot_download("bitnet-test/tiny-packed", cache_dir=cache_dir(env), endpoint=hub.url,
                               allow_patterns=["config.json", "*.safetensors"])
    assert pathlib.Path(got) == snap and hub.requests("/cdn") == []
    bench = bitnet(env, "bench", "-hf", "bitnet-test/tiny-packed", "-p", "4", "-n", "2", "-r", "1", "-o", "json")
    assert json.loads(bench.stdout)[0]["avg_ts"] > 0


def test_interrupted_download_resumes_with_range(hub, env):
    repo = hub.repos["bitnet-test/kjv-single"]
    sha = repo.sha256("ggml-model-i2_s.gguf")
    hub.drop_after[sha] = [300_000, 2]  # the connection dies mid-file twice
    r = bitnet(env, "pull", "bitnet-test/kjv-single")
    assert sha256(r.stdout.strip()) == sha
    ranges = [rng for (_, path, rng) in hub.requests("/cdn")]
    assert ranges == [None, "bytes=300000-", "bytes=600000-"]
    assert "resuming" in r.stderr


def test_partial_file_of_an_earlier_run_is_resumed(hub, env):
    repo = hub.repos["bitnet-test/kjv-single"]
    sha = repo.sha256("ggml-model-i2_s.gguf")
    blobs = cache_dir(env) / "models--bitnet-test--kjv-single" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha}.incomplete").write_bytes(repo.files["ggml-model-i2_s.gguf"][:500_000])
    r = bitnet(env, "pull", "bitnet-test/kjv-single")
    assert sha256(r.stdout.strip()) == sha and not (blobs / f"{sha}.incomplete").exists()
    assert [rng for (_, _, rng) in hub.requests("/cdn")] == ["bytes=500000-"]


def test_damaged_cached_blob_is_detected_and_fetched_again(hub, env):
    path = pathlib.Path(bitnet(env, "pull", "bitnet-test/kjv-single").stdout.strip())
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0x55  # same size, different content
    blob.write_bytes(bytes(data))
    r = bitnet(env, "pull", "bitnet-test/kjv-single")
    assert "damaged" in r.stderr
    assert sha256(path) == hub.repos["bitnet-test/kjv-single"].sha256("ggml-model-i2_s.gguf")


def test_checksum_mismatch_removes_the_bad_download(hub, env):
    repo = hub.repos["bitnet-test/kjv-single"]
    sha = repo.sha256("ggml-model-i2_s.gguf")
    hub.corrupt[sha] = True
    r = bitnet(env, "pull", "bitnet-test/kjv-single", check=False)
    assert r.returncode == 1 and "checksum mismatch" in r.stderr and sha in r.stderr
    blobs = cache_dir(env) / "models--bitnet-test--kjv-single" / "blobs"
    assert list(blobs.iterdir()) == []
    snap = cache_dir(env) / "models--bitnet-test--kjv-single" / "snapshots"
    assert not snap.exists() or not any(snap.rglob("*.gguf"))


def test_errors_say_what_to_do(hub, env, tmp_path):
    r = bitnet(env, "pull", "bitnet-test/no-such-model", check=False)
    assert r.returncode == 1 and "was not found" in r.stderr and "HF_TOKEN" in r.stderr
    r = bitnet(env, "pull", "bitnet-test/gated", check=False)
    assert r.returncode == 1 and "is gated" in r.stderr and "HF_TOKEN" in r.stderr
    r = bitnet({**env, "HF_TOKEN": "hf_wrong"}, "pull", "bitnet-test/private", check=False)
    assert r.returncode == 1 and "the token in HF_TOKEN cannot read it" in r.stderr
    r = bitnet(env, "pull", "bitnet-test/kjv-single", "--revision", "v9", check=False)
    assert r.returncode == 1 and "no revision 'v9'" in r.stderr
    r = bitnet({**env, "HF_ENDPOINT": "http://127.0.0.1:9"}, "pull", "bitnet-test/kjv-single", check=False)
    assert r.returncode == 1 and "cannot reach" in r.stderr and "HF_HUB_OFFLINE=1" in r.stderr
    r = bitnet({**env, "HF_HUB_OFFLINE": "1"}, "run", "-hf", "bitnet-test/kjv-single", *PROMPT, check=False)
    assert r.returncode == 1 and "HF_HUB_OFFLINE is set" in r.stderr and "no copy" in r.stderr
    r = bitnet(env, "run", "-hf", "not a repo", *PROMPT, check=False)
    assert r.returncode == 1 and "ORG/NAME" in r.stderr
    r = bitnet(env, "run", "-m", str(KJV), "-hf", "bitnet-test/kjv-single", *PROMPT, check=False)
    assert r.returncode == 1 and "give one" in r.stderr
    r = bitnet(env, "pull", "bitnet-test/kjv-gguf:f16", "--include", "README.md", check=False)
    assert r.returncode == 1 and "give one" in r.stderr  # a selector and exact files: neither is dropped silently
    r = bitnet(env, "pull", "bitnet-test/tiny-packed:modeling_bitnet.py", check=False)
    assert r.returncode == 0  # any single file can be pulled; only running it would fail
    # The cache's disk cannot hold the download: refused before a byte is written.
    hub.fake_size[("bitnet-test/kjv-single", "ggml-model-i2_s.gguf")] = 1 << 60
    r = bitnet(env, "pull", "bitnet-test/kjv-single", check=False)
    assert r.returncode == 1 and "not enough disk space" in r.stderr and hub.requests("/cdn") == []


def test_token_reaches_the_hub_and_gated_repo_downloads(hub, env):
    r = bitnet({**env, "HF_TOKEN": "hf_good"}, "pull", "bitnet-test/gated")
    assert sha256(r.stdout.strip()) == sha256(KJV)
    r = bitnet(env, "run", "-hf", "bitnet-test/gated", "-hft", "hf_good", *PROMPT)
    assert "And God said" in r.stdout
    # The token file huggingface_hub's login writes ($HF_HOME/token).
    pathlib.Path(env["HF_HOME"]).mkdir(parents=True, exist_ok=True)
    (pathlib.Path(env["HF_HOME"]) / "token").write_text("hf_good\n")
    bitnet(env, "pull", "bitnet-test/gated")


def test_unreachable_hub_falls_back_to_the_cache(hub, env):
    bitnet(env, "pull", "bitnet-test/kjv-single")
    r = bitnet({**env, "HF_ENDPOINT": "http://127.0.0.1:9"}, "run", "-hf", "bitnet-test/kjv-single", *PROMPT)
    assert "using the cached snapshot" in r.stderr and "And God said" in r.stdout


def test_renamed_repository_follows_the_relative_redirect(hub, env):
    out = bitnet(env, "pull", "bitnet-test/old-name").stdout.strip()
    assert sha256(out) == sha256(KJV) and "models--bitnet-test--old-name" in out


def test_revision_pinned_by_commit_and_branch(hub, env):
    repo = hub.repos["bitnet-test/kjv-single"]
    out = bitnet(env, "pull", "bitnet-test/kjv-single", "--revision", repo.commit).stdout.strip()
    assert f"/snapshots/{repo.commit}/" in out
    refs = cache_dir(env) / "models--bitnet-test--kjv-single" / "refs"
    assert not refs.exists() or not (refs / repo.commit).exists()  # a commit needs no ref


def test_models_lists_known_models_and_what_is_cached(hub, env):
    data = json.loads(bitnet(env, "models", "--json").stdout)
    repos = {m["repo"]: m for m in data["models"]}
    assert repos["microsoft/bitnet-b1.58-2B-4T-gguf"]["runs"] is True
    assert repos["microsoft/bitnet-b1.58-2B-4T-gguf"]["files"] == ["ggml-model-i2_s.gguf"]
    for m in data["models"]:
        assert m["source"] == "https://huggingface.co/" + m["repo"] and isinstance(m["runs"], bool) and m["how"]
    assert not any(m["cached"] for m in data["models"])
    table = bitnet(env, "models").stdout
    assert "tiiuae/Falcon3-1B-Instruct-1.58bit" in table and "HF1BitLLM/Llama3-8B-1.58-100B-tokens" in table
    one = bitnet(env, "models", "microsoft/bitnet-b1.58-2B-4T").stdout
    assert "BitNetForCausalLM" in one
    r = bitnet(env, "models", "microsoft/bitnet-b1.58-2B4T", check=False)
    assert r.returncode == 1 and "did you mean microsoft/bitnet-b1.58-2B-4T" in r.stderr


def test_serve_hf_names_the_model_by_repository(hub, env, tmp_path):
    import subprocess, time, urllib.request, re
    log = tmp_path / "serve.log"
    with open(log, "wb") as f:
        p = subprocess.Popen([CLI, "serve", "-hf", "bitnet-test/kjv-single", "--port", "0"], env=env, stdout=f,
                             stderr=subprocess.STDOUT)
    try:
        port = None
        for _ in range(600):
            m = re.search(r"ready on http://[^:]+:(\d+)", log.read_text(errors="replace"))
            if m:
                port = int(m.group(1))
                break
            assert p.poll() is None, log.read_text()
            time.sleep(0.05)
        assert port, log.read_text()
        models = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30))
        assert [m["id"] for m in models["data"]] == ["bitnet-test/kjv-single"]
    finally:
        p.terminate()
        p.wait(30)


def test_two_processes_pulling_the_same_model_share_one_blob(hub, env):
    import subprocess
    procs = [subprocess.Popen([CLI, "pull", "bitnet-test/kjv-gguf", "--include", "kjv-2m-F16.gguf"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert len({o[0] for o in outs}) == 1
    blobs = cache_dir(env) / "models--bitnet-test--kjv-gguf" / "blobs"
    assert [b.name for b in blobs.iterdir()] == [hub.repos["bitnet-test/kjv-gguf"].sha256("kjv-2m-F16.gguf")]
    assert sha256(outs[0][0].strip()) == hub.repos["bitnet-test/kjv-gguf"].sha256("kjv-2m-F16.gguf")
