"""Embeddings through the official `openai` client (which asks for base64 by default) and llama-server's native
/embedding: pooled final hidden states, L2-normalized, the same in both encodings and routes; 501 without
--embeddings. The engine's hidden states themselves are checked against transformers in test_hf_golden.cpp."""
import math

import pytest

openai = pytest.importorskip("openai", reason="the `openai` package is not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def emb(start_server):
    return start_server("-np", "1", "-c", "256", "--embeddings", "--pooling", "mean")


@pytest.fixture(scope="module")
def client(emb):
    return openai.OpenAI(base_url=emb.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_openai_client_floats_and_base64_agree(client, emb):
    texts = ["The quick brown fox", "jumps over the lazy dog", "The quick brown fox"]
    b64 = client.embeddings.create(model="any", input=texts)  # the client's default: base64, decoded by it
    flt = client.embeddings.create(model="any", input=texts, encoding_format="float")
    assert [d.index for d in flt.data] == [0, 1, 2]
    assert flt.usage.prompt_tokens == flt.usage.total_tokens > 6
    for a, b in zip(b64.data, flt.data):
        assert len(a.embedding) == len(b.embedding) == 256  # the tiny model's hidden size
        assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding)) == 0
    norms = [math.sqrt(sum(x * x for x in d.embedding)) for d in flt.data]
    assert all(abs(n - 1) < 1e-5 for n in norms)
    assert flt.data[0].embedding == flt.data[2].embedding
    assert flt.data[0].embedding != flt.data[1].embedding
    # Token ids are inputs too.
    status, body, _ = emb.request("POST", "/tokenize", {"content": texts[0]})  # GPT-2 adds no BOS
    by_ids = client.embeddings.create(model="any", input=body["tokens"], encoding_format="float")
    assert max(abs(x - y) for x, y in zip(by_ids.data[0].embedding, flt.data[0].embedding)) < 1e-6


def test_native_route_and_normalizations(emb, client):
    ref = client.embeddings.create(model="any", input="hello there", encoding_format="float").data[0].embedding
    status, body, _ = emb.request("POST", "/embedding", {"content": "hello there", "embd_normalize": -1})
    assert status == 200 and body[0]["index"] == 0 and len(body[0]["embedding"]) == 1
    raw = body[0]["embedding"][0]
    norm = math.sqrt(sum(x * x for x in raw))
    assert norm > 0 and max(abs(x / norm - y) for x, y in zip(raw, ref)) < 1e-6
    status, body, _ = emb.request("POST", "/embedding", {"content": "hello there", "embd_normalize": 1})
    assert abs(sum(abs(x) for x in body[0]["embedding"][0]) - 1) < 1e-5


def test_refusals_name_what_is_wrong(emb, client, server):
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="any", input="x", dimensions=8)
    with pytest.raises(openai.BadRequestError, match="'frob' is not supported"):
        client.embeddings.create(model="any", input="x", extra_body={"frob": 1})
    status, body, _ = emb.request("POST", "/v1/embeddings", {"input": []})
    assert status == 400 and "'input'" in body["error"]["message"]
    status, body, _ = emb.request("POST", "/v1/embeddings", {"input": "word " * 400})
    assert status == 400 and "context" in body["error"]["message"]
    # The shared server was started without --embeddings.
    status, body, _ = server.request("POST", "/v1/embeddings", {"input": "x"})
    assert status == 501 and "--embeddings" in body["error"]["message"]


def test_pooling_none_gives_one_vector_per_token(start_server):
    s = start_server("-np", "1", "-c", "128", "--embeddings", "--pooling", "none")
    status, toks, _ = s.request("POST", "/tokenize", {"content": "one two three"})  # GPT-2 adds no BOS
    status, body, _ = s.request("POST", "/embedding", {"content": "one two three"})
    assert status == 200 and len(body[0]["embedding"]) == len(toks["tokens"])
    status, body, _ = s.request("POST", "/v1/embeddings", {"input": "one two three"})
    assert status == 400 and "pooling" in body["error"]["message"]
