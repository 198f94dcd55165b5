"""Embeddings from Python (llama-cpp-python's embed / create_embedding), checked against the server's answer for
the same model and against the pooling definitions applied to the per-token vectors."""
import math

import numpy as np
import pytest

from bitnet import Llama


@pytest.fixture(scope="module")
def llm(tiny_model):
    m = Llama(str(tiny_model), n_ctx=256, verbose=False, embedding=True)
    yield m
    m.close()


def test_pooling_is_what_the_token_vectors_say(tiny_model, llm):
    tokens = Llama(str(tiny_model), n_ctx=256, verbose=False, pooling_type="none").embed("the cat sat on the mat")
    rows = np.array(tokens)
    assert rows.ndim == 2 and rows.shape[1] == llm.n_embd()
    mean = np.array(llm.embed("the cat sat on the mat"))
    assert np.allclose(mean, rows.mean(axis=0), atol=1e-5)
    last = Llama(str(tiny_model), n_ctx=256, verbose=False, pooling_type=3).embed("the cat sat on the mat")
    assert np.allclose(last, rows[-1], atol=1e-6)
    cls = Llama(str(tiny_model), n_ctx=256, verbose=False, pooling_type="cls").embed("the cat sat on the mat")
    assert np.allclose(cls, rows[0], atol=1e-6)


def test_normalize_batch_count_and_create_embedding(llm):
    v = llm.embed("hello", normalize=True)
    assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5
    both, count = llm.embed(["hello", "world"], normalize=True, return_count=True)
    assert both[0] == v and count >= 2
    r = llm.create_embedding(["hello", "world"])
    assert r["object"] == "list" and [d["index"] for d in r["data"]] == [0, 1]
    assert np.allclose(r["data"][0]["embedding"], v)
    assert r["usage"]["prompt_tokens"] == count
    # Embedding does not disturb generation afterwards.
    assert llm.create_completion("Hi", max_tokens=2, temperature=0)["usage"]["completion_tokens"] <= 2


def test_errors(tiny_model, llm):
    with pytest.raises(ValueError, match="pooling_type"):
        Llama(str(tiny_model), verbose=False, pooling_type=4)
    with pytest.raises(TypeError):
        llm.embed([1, 2])
    with pytest.raises(Exception, match="context"):
        llm.embed("word " * 1000, truncate=False)
    assert len(llm.embed("word " * 1000)) == llm.n_embd()  # truncated to n_ctx
