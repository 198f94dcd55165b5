"""llama-cpp-python compatibility of bitnet.Llama: chat_format names (rendered as Python's jinja2 renders the same
templates, and as the formats are written out by hand), logprobs in completions and chats (against a log-softmax of
the logits eval() computes), and every llama-cpp-python argument either working or refused by name."""
import jinja2
import jinja2.sandbox
import numpy as np
import pytest

import bitnet
from bitnet import chat_formats

PROMPT = "Once upon a time"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "How are you?"}]


@pytest.fixture(scope="module")
def llm(tiny_model):
    return bitnet.Llama(str(tiny_model), n_ctx=512, verbose=False, seed=1)


def jinja2_render(template, messages, bos="<s>", eos="</s>"):
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=["jinja2.ext.loopcontrols"])

    def raise_exception(message):
        raise jinja2.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, bos_token=bos, eos_token=eos,
                                            add_generation_prompt=True)


@pytest.mark.parametrize("name", sorted(chat_formats.CHAT_FORMATS))
def test_chat_formats_render_as_jinja2_does(tiny_model, name):
    llm = bitnet.Llama(str(tiny_model), n_ctx=256, verbose=False, chat_format=name)
    prompt = llm.apply_chat_template(MESSAGES)
    assert prompt == jinja2_render(chat_formats.CHAT_FORMATS[name].template, MESSAGES)
    assert "How are you?" in prompt and "Hello!" in prompt and "Be brief." in prompt
    out = llm.create_chat_completion(MESSAGES, max_tokens=4, seed=1)
    assert out["usage"]["prompt_tokens"] == len(llm.tokenize(prompt, add_bos=False, special=True))


# The formats as their documentation writes them (bos <s>, eos </s>).
WRITTEN = {
    "llama-2": "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] How are you? [/INST]",
    "chatml": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
              "Hello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n",
    "llama-3": "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user"
               "<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|><|start_header_id|>assistant"
               "<|end_header_id|>\n\n",
    "mistral-instruct": "<s>[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] How are you? [/INST]",
    "gemma": "<s><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
             "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n",
}


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_chat_formats_match_their_documented_layout(tiny_model, name):
    llm = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, chat_format=name)
    assert llm.apply_chat_template(MESSAGES) == WRITTEN[name]


def test_chat_format_names_and_errors(tiny_model, llm):
    own = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, chat_format="chat_template.default")
    assert own.apply_chat_template(MESSAGES) == llm.apply_chat_template(MESSAGES)
    with pytest.raises(ValueError) as e:
        bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, chat_format="functionary")
    assert "functionary" in str(e.value) and "chatml" in str(e.value) and "llama-3" in str(e.value)
    gemma = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, chat_format="gemma")
    with pytest.raises(bitnet.BitnetError, match="role tool is not supported"):
        gemma.apply_chat_template([{"role": "tool", "content": "x"}])


def test_chat_format_stop_strings_end_the_turn(tiny_model):
    # The format's end-of-turn text stops generation (a vocabulary where it is not a control token writes it out).
    llm = bitnet.Llama(str(tiny_model), n_ctx=256, verbose=False, chat_format="chatml")
    wide = {"temperature": 10.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "seed": 4}
    plain = llm.create_chat_completion(MESSAGES, max_tokens=20, **wide)["choices"][0]["message"]["content"]
    cut = plain[3:6]
    out = llm.create_chat_completion(MESSAGES, max_tokens=20, stop=cut, **wide)["choices"][0]
    assert out["message"]["content"] == plain[: plain.index(cut)] and out["finish_reason"] == "stop"


def reference_logprobs(tiny_model, prompt_ids, tokens):
    ref = bitnet.Llama(str(tiny_model), n_ctx=512, verbose=False, logits_all=True)
    ref.eval(prompt_ids + tokens)
    return bitnet.Llama.logits_to_logprobs(ref._scores)[len(prompt_ids) - 1: len(prompt_ids) - 1 + len(tokens)]


def test_completion_logprobs_equal_a_log_softmax_of_the_logits(llm, tiny_model):
    wide = {"seed": 5, "temperature": 1.5, "top_k": 0, "top_p": 1.0, "min_p": 0.0}
    out = llm(PROMPT, max_tokens=10, logprobs=3, **wide)
    choice = out["choices"][0]
    lp = choice["logprobs"]
    assert set(lp) == {"tokens", "text_offset", "token_logprobs", "top_logprobs"}
    assert "".join(lp["tokens"]) == choice["text"]
    assert lp["text_offset"][0] == len(PROMPT)
    assert all(b - a == len(t) for a, b, t in zip(lp["text_offset"], lp["text_offset"][1:], lp["tokens"]))
    assert llm(PROMPT, max_tokens=10, **wide)["choices"][0]["text"] == choice["text"]  # recording changes nothing
    # The engine's records for the same call, against a log-softmax of the logits eval() gives for the same ids.
    r = llm._generate_blocking(PROMPT, llm._options(10, 1.5, 1.0, 0.0, 0, 1.0, 0.0, 0.0, None, 5, add_bos=True,
                                                     top_logprobs=3))
    assert r["text"] == choice["text"]
    gen = [rec[0] for rec in r["logprobs"]]
    assert gen == r["tokens"] and len(gen) == 10
    ref = reference_logprobs(tiny_model, llm.tokenize(PROMPT.encode()), gen)
    assert ref.shape[0] == len(gen)
    for i, (token, logprob, top) in enumerate(r["logprobs"]):
        assert abs(logprob - ref[i, token]) < 1e-3
        assert [a for a, _ in top] == list(np.argsort(-ref[i], kind="stable")[:3])
        assert all(abs(v - ref[i, a]) < 1e-3 for a, v in top)
        assert lp["token_logprobs"][i] == pytest.approx(logprob)
        assert lp["top_logprobs"][i][lp["tokens"][i]] == pytest.approx(logprob)  # the chosen token is listed too
        assert max(lp["top_logprobs"][i].values()) == pytest.approx(top[0][1])


def test_chat_logprobs_openai_shape(llm, tiny_model):
    out = llm.create_chat_completion(MESSAGES, max_tokens=6, logprobs=True, top_logprobs=2, temperature=0)
    lp = out["choices"][0]["logprobs"]
    assert lp["refusal"] is None and len(lp["content"]) > 0
    assert "".join(c["token"] for c in lp["content"]) == out["choices"][0]["message"]["content"]
    for c in lp["content"]:
        assert set(c) == {"token", "logprob", "bytes", "top_logprobs"}
        assert bytes(c["bytes"]).decode("utf-8", errors="ignore") == c["token"]
        assert len(c["top_logprobs"]) == 2
        assert c["top_logprobs"][0]["logprob"] >= c["top_logprobs"][1]["logprob"]
        assert c["logprob"] == pytest.approx(c["top_logprobs"][0]["logprob"])  # greedy: the best one
    plain = llm.create_chat_completion(MESSAGES, max_tokens=6, logprobs=True, temperature=0)
    assert all(c["top_logprobs"] == [] for c in plain["choices"][0]["logprobs"]["content"])
    assert llm.create_chat_completion(MESSAGES, max_tokens=2)["choices"][0]["logprobs"] is None
    with pytest.raises(ValueError, match="top_logprobs needs logprobs=True"):
        llm.create_chat_completion(MESSAGES, max_tokens=2, top_logprobs=2)
    with pytest.raises(ValueError, match="stream=True"):
        llm.create_chat_completion(MESSAGES, max_tokens=2, logprobs=True, stream=True)
    with pytest.raises(ValueError, match="stream=True"):
        llm(PROMPT, max_tokens=2, logprobs=1, stream=True)


@pytest.mark.parametrize("kwargs,match", [
    ({"type_k": 2}, "type_k=2 .*f16 or q8_0"),
    ({"type_v": "q4_0"}, "type_v='q4_0' .*f16 or q8_0"),
    ({"n_threads_batch": 3}, "n_threads_batch=3"),
    ({"lora_path": "x.gguf"}, "lora_path='x.gguf' .*LoRA"),
    ({"rope_freq_base": 5e5}, "rope_freq_base=500000.0"),
    ({"tensor_split": [0.5, 0.5]}, "tensor_split"),
    ({"kv_overrides": {"a": 1}}, "kv_overrides"),
    ({"draft_model": object()}, "draft_model"),
    ({"chat_handler": object()}, "chat_handler"),
    ({"spm_infill": True}, "spm_infill=True"),
    ({"use_mlock": True}, "use_mlock=True"),
    ({"vocab_only": True}, "vocab_only=True"),
    ({"attention_type": 0}, "attention_type=0"),
    ({"numa": True}, "numa=True"),
])
def test_constructor_refuses_what_it_cannot_honour_by_name(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, **kwargs)


def test_constructor_accepts_neutral_and_supported_arguments(tiny_model):
    llm = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, type_k=1, type_v="f16", flash_attn=True,
                       n_ubatch=8, n_batch=32, offload_kqv=False, no_perf=True, split_mode=0, main_gpu=0,
                       rope_scaling_type=-1, attention_type=1, yarn_ext_factor=-1.0, last_n_tokens_size=16,
                       numa=False, op_offload=None, swa_full=None, n_threads_batch=None)
    # n_ubatch is the engine's step: 20 tokens in steps of 8 give the same logits as one step.
    ids = llm.tokenize(b"word " * 19)
    llm.eval(ids)
    one = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False)
    one.eval(ids)
    np.testing.assert_array_equal(llm.scores[0], one.scores[0])
    with pytest.raises(TypeError, match="no_such_argument"):
        bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, no_such_argument=1)


def test_q8_0_kv_cache_by_ggml_id_or_name(tiny_model):
    # llama-cpp-python's type_k / type_v: GGML_TYPE_Q8_0 (8) or "q8_0". The logits stay close to the f16 cache's,
    # and a saved state names its cache type (an f16 Llama refuses it).
    ids = None
    scores = {}
    states = {}
    for name, kv in (("f16", {}), ("q8_0", {"type_k": bitnet.llama.GGML_TYPE_Q8_0, "type_v": "q8_0"})):
        llm = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, **kv)
        ids = llm.tokenize(b"In the beginning God created the heaven and the earth.")
        llm.eval(ids)
        scores[name] = llm.scores[0].copy()
        states[name] = llm.save_state()
    a, b = scores["f16"], scores["q8_0"]
    assert float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))) > 0.999
    assert int(np.argmax(a)) == int(np.argmax(b))
    with pytest.raises(Exception, match="q8_0"):
        bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False).load_state(states["q8_0"])


def test_last_n_tokens_size_is_the_penalty_window(tiny_model):
    a = bitnet.Llama(str(tiny_model), n_ctx=128, verbose=False, last_n_tokens_size=0)
    b = bitnet.Llama(str(tiny_model), n_ctx=128, verbose=False, last_n_tokens_size=64)
    kw = {"max_tokens": 24, "temperature": 0, "repeat_penalty": 5.0}
    assert a(PROMPT, **kw)["choices"][0]["text"] != b(PROMPT, **kw)["choices"][0]["text"]


@pytest.mark.parametrize("kwargs,match", [
    ({"mirostat_mode": 3}, "mirostat must be 0"),
    ({"typical_p": 1.5}, "typical_p must be in"),
    ({"tfs_z": 0.9}, "tfs_z=0.9"),
    ({"suffix": "end"}, "suffix='end'"),
    ({"logits_processor": [lambda i, s: s]}, "logits_processor"),
    ({"stopping_criteria": [lambda i, s: False]}, "stopping_criteria"),
])
def test_completion_refuses_what_it_cannot_honour_by_name(llm, kwargs, match):
    with pytest.raises((ValueError, bitnet.BitnetError), match=match):
        llm(PROMPT, max_tokens=2, **kwargs)


def test_typical_and_mirostat_sample(llm):
    # A strong repeat penalty flattens the random model's distribution (it otherwise repeats its last token).
    flat = dict(max_tokens=12, top_k=0, min_p=0.0, top_p=1.0, repeat_penalty=10.0)
    text = lambda **kw: llm(PROMPT, **flat, **kw)["choices"][0]["text"]
    greedy = text(temperature=0)
    sampled = [text(seed=s) for s in (1, 2, 3)]
    assert any(t != greedy for t in sampled)
    # Mirostat v2 with a tiny target surprise keeps only the most likely token: greedy whatever the seed.
    assert all(text(seed=s, mirostat_mode=2, mirostat_tau=0.01) == greedy for s in (1, 2, 3))
    assert text(seed=4, mirostat_mode=1) == text(seed=4, mirostat_mode=1)  # v1, seeded
    # A narrow typical set changes what is drawn.
    hot = [text(seed=s, temperature=3.0) for s in (1, 2, 3)]
    assert [text(seed=s, temperature=3.0, typical_p=0.05) for s in (1, 2, 3)] != hot


@pytest.mark.parametrize("kwargs,match", [
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"function_call": "auto"}, "function_call='auto'"),
    ({"tools": [{"type": "function"}]}, "tools"),
    ({"tfs_z": 0.5}, "tfs_z=0.5"),
])
def test_chat_refuses_what_it_cannot_honour_by_name(llm, kwargs, match):
    with pytest.raises(ValueError, match=match):
        llm.create_chat_completion(MESSAGES, max_tokens=2, **kwargs)


def test_neutral_sampler_values_are_accepted(llm):
    kw = {"tfs_z": 1.0, "mirostat_mode": 0, "mirostat_tau": 5.0, "mirostat_eta": 0.1, "typical_p": 1.0}
    assert llm(PROMPT, max_tokens=2, **kw)["choices"][0]["text"] is not None
    assert llm.create_chat_completion(MESSAGES, max_tokens=2, **kw)["choices"][0]["message"] is not None


def test_pickle_reloads_the_model(tiny_model):
    import pickle

    llm = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, chat_format="chatml")
    again = pickle.loads(pickle.dumps(llm))
    assert again.n_ctx() == 64 and again.chat_format == "chatml"
    assert again(PROMPT, max_tokens=4, temperature=0)["choices"][0]["text"] == \
        llm(PROMPT, max_tokens=4, temperature=0)["choices"][0]["text"]


def test_openai_v1_types_and_methods_bitnet_does_not_have(llm):
    from openai.types.chat import ChatCompletion

    out = llm.create_chat_completion_openai_v1(MESSAGES, max_tokens=3, temperature=0)
    assert isinstance(out, ChatCompletion) and out.choices[0].message.role == "assistant"
    chunks = list(llm.create_chat_completion_openai_v1(MESSAGES, max_tokens=3, temperature=0, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == out.choices[0].message.content
    with pytest.raises(NotImplementedError, match="tokenize"):
        llm.tokenizer()
    assert llm.token_nl() == llm.tokenize(b"\n", add_bos=False)[-1]
    assert llm.pooling_type() == "mean"
    assert bitnet.Llama.longest_token_prefix([1, 2, 3], [1, 2, 4]) == 2


def test_n_gpu_layers_is_honoured_or_refused(tiny_model):
    # Without a CUDA build or a GPU the library says which is missing; never a silent CPU run.
    try:
        llm = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False, n_gpu_layers=-1)
    except bitnet.BitnetError as e:
        assert "cuda" in str(e).lower() or "gpu" in str(e).lower(), e
        return
    assert llm(PROMPT, max_tokens=4, temperature=0)["usage"]["completion_tokens"] >= 1
