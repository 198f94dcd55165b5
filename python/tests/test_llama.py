"""bitnet.Llama against the C++ CLI on the same model: the same text for the same prompt, seed and sampling
settings; OpenAI-shaped results; streaming equal to the blocking call; early stream exit frees the engine;
errors raised as bitnet.BitnetError with the library's messages."""
import threading
import time

import pytest

import bitnet
from conftest import run_cli

PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def llm(tiny_model):
    return bitnet.Llama(str(tiny_model), n_ctx=512, verbose=False, seed=1)


def cli_text(model, *args):
    return run_cli("run", "-m", str(model), "-p", PROMPT, "--no-display-prompt", *args).stdout


def test_completion_equals_cli_greedy(llm, tiny_model):
    out = llm(PROMPT, max_tokens=24, temperature=0)
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-")
    choice = out["choices"][0]
    assert choice["text"] == cli_text(tiny_model, "-n", "24", "--temp", "0")
    assert choice["finish_reason"] in ("length", "stop")
    usage = out["usage"]
    assert usage["prompt_tokens"] == len(llm.tokenize(PROMPT.encode()))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("temp,top_k,top_p,min_p", [(0.8, 40, 0.95, 0.05), (10.0, 0, 1.0, 0.0)])
def test_completion_equals_cli_sampled(llm, tiny_model, temp, top_k, top_p, min_p):
    # A random model mostly repeats its prompt's last word; temperature 10 with the filters off samples widely, so
    # equal text means the same sampler, seed and random stream (and the same UTF-8 handling).
    out = llm.create_completion(PROMPT, max_tokens=20, seed=7, temperature=temp, top_k=top_k, top_p=top_p,
                                min_p=min_p)
    expect = cli_text(tiny_model, "-n", "20", "-s", "7", "--temp", str(temp), "--top-k", str(top_k),
                      "--top-p", str(top_p), "--min-p", str(min_p))
    assert out["choices"][0]["text"] == expect
    if temp > 5:
        assert len(set(expect.split())) > 5


def test_tokenize_equals_cli(llm, tiny_model):
    text = "Hello world, ünïcode 🦙"
    ids = run_cli("tokenize", "-m", str(tiny_model), "-p", text, "--ids-only").stdout
    expect = [int(t) for t in ids.replace("[", " ").replace("]", " ").replace(",", " ").split()]
    assert llm.tokenize(text.encode()) == expect
    assert llm.detokenize(expect) == text.encode()
    assert llm.tokenize(text) == expect  # str works too
    assert llm.tokenize(text.encode(), add_bos=False) == expect[1:]


def test_stream_equals_blocking_call(llm):
    wide = {"temperature": 10.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}  # varied text, multi-byte characters
    full = llm(PROMPT, max_tokens=30, seed=3, **wide)["choices"][0]
    chunks = list(llm(PROMPT, max_tokens=30, seed=3, stream=True, **wide))
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == full["text"]
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == full["finish_reason"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_stream_early_break_frees_the_engine(llm):
    it = llm(PROMPT, max_tokens=200, temperature=0, stream=True)
    next(it)
    it.close()  # what `break` in a for loop does to a generator
    assert llm(PROMPT, max_tokens=4, temperature=0)["choices"][0]["text"] is not None
    for _ in llm(PROMPT, max_tokens=200, stream=True):
        break
    del _
    assert len(llm(PROMPT, max_tokens=4)["choices"]) == 1


def test_a_second_generation_while_streaming_raises(llm):
    it = llm(PROMPT, max_tokens=50, stream=True)
    with pytest.raises(bitnet.BitnetError, match="already running"):
        llm(PROMPT, max_tokens=4)
    it.close()
    llm(PROMPT, max_tokens=4)


def test_chat_completion(llm):
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}]
    prompt = llm.apply_chat_template(messages)
    assert "Hi" in prompt and "You are terse." in prompt
    out = llm.create_chat_completion(messages, max_tokens=12, seed=5)
    assert out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-")
    msg = out["choices"][0]["message"]
    assert msg["role"] == "assistant" and isinstance(msg["content"], str)
    # The chat path is completion of the rendered template without an extra BOS.
    assert out["usage"]["prompt_tokens"] == len(llm.tokenize(prompt, add_bos=False, special=True))
    chunks = list(llm.create_chat_completion(messages, max_tokens=12, seed=5, stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == msg["content"]


def test_stop_strings_and_echo(llm):
    full = llm(PROMPT, max_tokens=30, temperature=0)["choices"][0]["text"]
    assert len(full) > 4
    stop = full[2:4]
    cut = llm(PROMPT, max_tokens=30, temperature=0, stop=[stop])["choices"][0]
    assert cut["text"] == full[: full.index(stop)] and cut["finish_reason"] == "stop"
    echoed = llm(PROMPT, max_tokens=5, temperature=0, echo=True)["choices"][0]["text"]
    assert echoed.startswith(PROMPT)


def test_gil_is_released_during_generation(llm):
    done = threading.Event()
    result = {}

    def work():
        result["out"] = llm(PROMPT, max_tokens=300, temperature=0)
        done.set()

    t = threading.Thread(target=work)
    t0 = time.perf_counter()
    t.start()
    ticks = 0
    while not done.is_set():
        ticks += 1  # runs only while the worker does not hold the GIL
    t.join()
    elapsed = time.perf_counter() - t0
    assert result["out"]["usage"]["completion_tokens"] > 0
    assert elapsed > 0.02, "generation too short to tell"
    assert ticks > 10000 * elapsed  # a Python loop does millions of iterations per second when it can run


def test_errors_are_bitnet_errors_with_library_messages(llm, tmp_path):
    with pytest.raises(bitnet.BitnetError) as e:
        bitnet.Llama(str(tmp_path / "missing.gguf"), verbose=False)
    assert "missing.gguf" in str(e.value)
    with pytest.raises(bitnet.BitnetError, match="temperature"):
        llm(PROMPT, temperature=float("nan"))
    with pytest.raises(bitnet.BitnetError, match=r"\[generate\] stop strings must not be empty"):
        llm(PROMPT, stop=[""])
    with pytest.raises(bitnet.BitnetError, match="the prompt has .* tokens but the context holds 512"):
        llm("word " * 1000)
    with pytest.raises(ValueError, match="logprobs with echo=True"):
        llm(PROMPT, logprobs=3, echo=True)
    with pytest.raises(bitnet.BitnetError):
        llm.detokenize([10**9])


def test_model_facts(llm):
    assert llm.n_ctx() == 512
    assert llm.n_vocab() == 32000
    assert llm.token_bos() == 1 and llm.token_eos() == 2
    assert llm.metadata["tokenizer.ggml.model"] == "llama"


def test_thread_count_is_per_model_and_safe_to_change(tiny_model, llm):
    one = bitnet.Llama(str(tiny_model), n_ctx=128, n_threads=1, verbose=False)
    assert one._engine.n_threads == 1
    before = llm(PROMPT, max_tokens=8, seed=2, temperature=10.0, top_k=0, top_p=1.0, min_p=0.0)["choices"][0]["text"]
    bitnet.set_num_threads(1)  # replaces the process-wide pool; the models keep their own
    bitnet.set_num_threads(2)
    after = llm(PROMPT, max_tokens=8, seed=2, temperature=10.0, top_k=0, top_p=1.0, min_p=0.0)["choices"][0]["text"]
    same = one(PROMPT, max_tokens=8, seed=2, temperature=10.0, top_k=0, top_p=1.0, min_p=0.0)["choices"][0]["text"]
    assert before == after == same  # the thread count does not change results


def test_base3_packing_gives_the_same_text(tiny_model, llm):
    """packing="base3" (1.6 bits per weight) holds the same weights: the same logits, so the same sampled text."""
    dense = bitnet.Llama(str(tiny_model), n_ctx=128, verbose=False, packing="base3")
    kw = dict(max_tokens=8, seed=3, temperature=10.0, top_k=0, top_p=1.0, min_p=0.0)
    assert dense(PROMPT, **kw)["choices"][0]["text"] == llm(PROMPT, **kw)["choices"][0]["text"]
    with pytest.raises(bitnet.BitnetError, match="unknown packing 'tq1'"):
        bitnet.Llama(str(tiny_model), verbose=False, packing="tq1")


@pytest.mark.parametrize("prompt,n_ctx,cli_args,kwargs", [
    ("word " * 18, 16, ["-c", "16"], {}),
    ("x", 512, ["--temp", "-1"], {"temperature": -1.0}),
    ("x", 512, ["--top-p", "nan"], {"top_p": float("nan")}),
    ("x", 512, ["--min-p", "2"], {"min_p": 2.0}),
])
def test_error_messages_equal_the_cli(tiny_model, prompt, n_ctx, cli_args, kwargs):
    cli = run_cli("run", "-m", str(tiny_model), "-p", prompt, "-n", "2", "--no-display-prompt", *cli_args, check=False)
    assert cli.returncode != 0
    model = bitnet.Llama(str(tiny_model), n_ctx=n_ctx, verbose=False)
    with pytest.raises(bitnet.BitnetError) as e:
        model(prompt, max_tokens=2, **kwargs)
    assert cli.stderr.strip().endswith(f"bitnet: error: {e.value}")
    with pytest.raises(bitnet.BitnetError) as e_stream:  # streams raise the same (at the call or the first chunk)
        for _ in model(prompt, max_tokens=2, stream=True, **kwargs):
            pass
    assert str(e_stream.value) == str(e.value)


def test_closed_model_raises(tiny_model):
    with bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False) as m:
        assert m.n_ctx() == 64
    with pytest.raises(ValueError, match="was closed"):
        m("x", max_tokens=1)


@pytest.mark.parametrize("head", ["int8", "int4"])
def test_quantized_head_equals_cli(tiny_model, head):
    # The head is quantized the same way in the library the CLI and the package share.
    quantized = bitnet.Llama(str(tiny_model), n_ctx=128, verbose=False, seed=1, head=head)
    out = quantized(PROMPT, max_tokens=12, temperature=0)
    assert out["choices"][0]["text"] == cli_text(tiny_model, "-n", "12", "--temp", "0", "--head", head)
    with pytest.raises(bitnet.BitnetError, match="unknown head type 'q4'"):
        bitnet.Llama(str(tiny_model), verbose=False, head="q4")
