"""llama-cpp-python's evaluation state in bitnet.Llama: prefix reuse across completion calls (the same text with and
without it, the reused count reported), save_state / load_state (generation continues exactly), the prompt cache
(LlamaRAMCache), and the low-level sample() / generate() on eval() and scores."""
import numpy as np
import pytest

import bitnet

PROMPT = "Once upon a time there was a little llama who lived on a farm with many other animals"
WIDE = {"temperature": 10.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}  # samples widely: text differs if anything does


@pytest.fixture(scope="module")
def llm(tiny_model):
    return bitnet.Llama(str(tiny_model), n_ctx=512, verbose=False, seed=1)


def run(llm, prompt, max_tokens=24, temperature=0.8, top_p=0.95, min_p=0.05, top_k=40, repeat_penalty=1.0,
        seed=1, add_bos=True):
    """A completion through the same path as llm(...), returning the engine's result (with reused_tokens)."""
    opts = llm._options(max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, 0.0, 0.0, None, seed,
                        add_bos=add_bos)
    return llm._generate_blocking(prompt, opts)


@pytest.mark.parametrize("kw", [{"temperature": 0}, {"seed": 11, **WIDE}, {"seed": 5, "repeat_penalty": 1.3}])
def test_completion_reuses_the_cached_prefix_with_the_same_text(llm, kw):
    llm.reset()
    cold = llm(PROMPT, max_tokens=24, **kw)["choices"][0]["text"]
    ids = llm.tokenize(PROMPT.encode())
    assert list(llm._input_ids[: len(ids)]) == ids  # the cache holds the prompt, then the generated tokens
    assert llm.n_tokens > len(ids)
    # The same prompt again: all but the last prompt token reused (it is evaluated for its logits), same text.
    assert llm(PROMPT, max_tokens=24, **kw)["choices"][0]["text"] == cold
    warm = run(llm, PROMPT, **kw)
    assert warm["reused_tokens"] == len(ids) - 1 and warm["text"] == cold
    # A longer prompt sharing the first one: the shared part is reused, the text equals a cold run.
    longer = PROMPT + " and a big red barn"
    llm.reset()
    cold_longer = run(llm, longer, **kw)
    assert cold_longer["reused_tokens"] == 0
    llm.reset()
    run(llm, PROMPT, max_tokens=4, temperature=0)
    warm_longer = run(llm, longer, **kw)
    assert warm_longer["reused_tokens"] >= len(ids) - 1
    assert warm_longer["text"] == cold_longer["text"] and warm_longer["tokens"] == cold_longer["tokens"]


def test_reused_tokens_are_reported_and_reset_forgets(llm):
    llm.reset()
    first = run(llm, PROMPT, max_tokens=8, temperature=0)
    assert first["reused_tokens"] == 0
    second = run(llm, PROMPT, max_tokens=8, temperature=0)
    assert second["reused_tokens"] == first["prompt_tokens"] - 1  # the last prompt token is evaluated for logits
    assert second["text"] == first["text"]
    llm.reset()
    assert run(llm, PROMPT, max_tokens=8, temperature=0)["reused_tokens"] == 0


def test_chat_turns_reuse_the_previous_turns(llm):
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there"}]
    llm.reset()
    a = llm.create_chat_completion(messages, max_tokens=8, seed=3)
    messages += [a["choices"][0]["message"], {"role": "user", "content": "And then?"}]
    prompt = llm.apply_chat_template(messages)
    warm = run(llm, prompt, max_tokens=8, temperature=0.2, seed=4, add_bos=False)
    assert warm["reused_tokens"] > 10
    llm.reset()
    cold = run(llm, prompt, max_tokens=8, temperature=0.2, seed=4, add_bos=False)
    assert cold["reused_tokens"] == 0 and cold["text"] == warm["text"]


def test_streams_keep_the_cache_state(llm):
    llm.reset()
    full = llm(PROMPT, max_tokens=20, seed=2, **WIDE)["choices"][0]["text"]
    n_after_blocking = llm.n_tokens
    chunks = list(llm(PROMPT, max_tokens=20, seed=2, stream=True, **WIDE))
    assert "".join(c["choices"][0]["text"] for c in chunks) == full
    assert llm.n_tokens == n_after_blocking
    it = llm(PROMPT, max_tokens=200, temperature=0, stream=True)
    next(it)
    it.close()
    assert 0 < llm.n_tokens < 200 + len(llm.tokenize(PROMPT.encode()))
    assert llm(PROMPT, max_tokens=20, seed=2, **WIDE)["choices"][0]["text"] == full


def test_eval_then_completion_and_embed_overwrites(llm):
    ids = llm.tokenize(PROMPT.encode())
    llm.reset()
    llm.eval(ids[:10])
    assert run(llm, PROMPT, max_tokens=6)["reused_tokens"] == 10
    llm.embed("something else entirely")
    assert llm.n_tokens == 0
    assert run(llm, PROMPT, max_tokens=6)["reused_tokens"] == 0


def test_a_failed_generation_leaves_nothing_to_reuse(llm):
    llm(PROMPT, max_tokens=4, temperature=0)
    assert llm.n_tokens > 0
    with pytest.raises(bitnet.BitnetError):
        llm(PROMPT, max_tokens=4, temperature=float("nan"))
    assert llm.n_tokens == 0


def take(gen, n):
    out = []
    for t in gen:
        out.append(t)
        if len(out) == n:
            break
    return out


def test_save_and_load_state_continue_exactly(tiny_model):
    llm = bitnet.Llama(str(tiny_model), n_ctx=256, verbose=False, seed=9)
    ids = llm.tokenize(PROMPT.encode())
    llm.eval(ids)
    state = llm.save_state()
    assert state.n_tokens == len(ids) and state.llama_state_size == len(state.llama_state) > 0
    assert list(state.input_ids[: len(ids)]) == ids
    uninterrupted = take(llm.generate([], reset=False, temp=10.0, top_k=0, top_p=1.0, min_p=0.0), 20)
    assert len(set(uninterrupted)) > 5
    # Clobber the cache and the state, then restore.
    llm.reset()
    llm(PROMPT[::-1], max_tokens=30, temperature=0)
    llm.load_state(state)
    assert llm.n_tokens == len(ids) and list(llm._input_ids) == ids
    again = take(llm.generate([], reset=False, temp=10.0, top_k=0, top_p=1.0, min_p=0.0), 20)
    assert again == uninterrupted
    # Into another Llama of the same model (fresh cache).
    other = bitnet.Llama(str(tiny_model), n_ctx=256, verbose=False, seed=123)
    other.load_state(state)
    assert take(other.generate([], reset=False, temp=10.0, top_k=0, top_p=1.0, min_p=0.0), 20) == uninterrupted
    # A completion after load_state reuses the loaded cache and gives the text of a cold run.
    other.load_state(state)
    warm = run(other, PROMPT, max_tokens=12, temperature=0)
    assert warm["reused_tokens"] == len(ids) - 1
    other.reset()
    assert run(other, PROMPT, max_tokens=12, temperature=0)["text"] == warm["text"]


def test_load_state_refuses_a_state_that_does_not_fit(tiny_model):
    big = bitnet.Llama(str(tiny_model), n_ctx=256, verbose=False)
    big.eval(big.tokenize(("word " * 100).encode()))
    state = big.save_state()
    small = bitnet.Llama(str(tiny_model), n_ctx=64, verbose=False)
    with pytest.raises(bitnet.BitnetError, match="do not fit the context of 64"):
        small.load_state(state)
    assert small.n_tokens == 0
    state.llama_state = state.llama_state[:-2]
    with pytest.raises(bitnet.BitnetError, match="expected"):
        big.load_state(state)


def test_prompt_cache_restores_a_saved_prefix(tiny_model):
    llm = bitnet.Llama(str(tiny_model), n_ctx=256, verbose=False, seed=1)
    cache = bitnet.LlamaRAMCache(capacity_bytes=1 << 30)
    llm.set_cache(cache)
    first = llm(PROMPT, max_tokens=6, temperature=0)["choices"][0]["text"]
    assert len(cache.cache_state) == 1
    llm(PROMPT[::-1], max_tokens=6, temperature=0)  # moves the cache elsewhere
    r = run(llm, PROMPT, max_tokens=6, temperature=0)  # the cached state of the first prompt is loaded
    assert r["reused_tokens"] == len(llm.tokenize(PROMPT.encode())) - 1 and r["text"] == first
    with pytest.raises(ValueError, match="LlamaDiskCache is not provided"):
        llm.set_cache(object())
    llm.set_cache(None)


def test_sample_picks_from_scores_like_the_completion(tiny_model):
    llm = bitnet.Llama(str(tiny_model), n_ctx=128, verbose=False, seed=1)
    ids = llm.tokenize(PROMPT.encode())
    with pytest.raises(ValueError, match="eval"):
        llm.sample()
    llm.eval(ids)
    greedy = llm.sample(temp=0)
    assert greedy == int(np.argmax(llm.scores[0]))
    # Greedy generate() equals the greedy completion's tokens.
    expect = run(llm, PROMPT, max_tokens=12, temperature=0)["tokens"]
    assert len(expect) == 12
    llm.reset()
    assert take(llm.generate(ids, temp=0), len(expect)) == expect
    # Sampled too: the same seed gives the same tokens as the completion (one chain, same random stream).
    sampled = run(llm, PROMPT, max_tokens=12, seed=77, **WIDE)["tokens"]
    llm.set_seed(5)
    seed = llm._rng.getrandbits(64)
    llm.set_seed(5)
    llm.reset()
    got = take(llm.generate(ids, temp=10.0, top_k=0, top_p=1.0, min_p=0.0), 12)
    assert got == run(llm, PROMPT, max_tokens=12, seed=seed, **WIDE)["tokens"]
    assert len(set(sampled)) > 1 and sampled != expect
    # logits_processor runs before the pick; stopping_criteria ends the generator.
    ban = greedy

    def no_greedy(input_ids, scores):
        scores[ban] = -np.inf
        return scores

    llm.reset()
    llm.eval(ids)
    assert llm.sample(temp=0, logits_processor=bitnet.LogitsProcessorList([no_greedy])) != ban
    llm.reset()
    stop_after_3 = bitnet.StoppingCriteriaList([lambda input_ids, logits: len(input_ids) >= len(ids) + 3])
    assert len(list(llm.generate(ids, temp=0, stopping_criteria=stop_after_3))) == 3


def test_sample_with_a_grammar_and_refused_samplers(tiny_model):
    llm = bitnet.Llama(str(tiny_model), n_ctx=128, verbose=False, seed=1)
    ids = llm.tokenize(b"The answer is")
    grammar = bitnet.LlamaGrammar.from_string('root ::= "yes" | "no"')
    pieces = []
    gen = llm.generate(ids, temp=0, grammar=grammar)
    for t in gen:
        if t == llm.token_eos():
            break
        pieces.append(t)
        assert len(pieces) < 10
    assert llm.detokenize(pieces).decode().strip() in ("yes", "no")
    llm.eval([1])
    with pytest.raises(bitnet.BitnetError, match="mirostat must be 0"):
        llm.sample(mirostat_mode=7)
    with pytest.raises(ValueError, match="tfs_z=0.5"):
        next(llm.generate(ids, tfs_z=0.5))
    with pytest.raises(ValueError, match="penalize_nl=False"):
        llm.sample(penalize_nl=False)
