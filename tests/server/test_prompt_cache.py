"""Prompt reuse across requests (llama-server's cache_prompt): a slot's KV cache outlives its request, the next
request goes to the slot sharing the longest prefix with its prompt, and only the rest is evaluated. What is
generated must not change: every reused answer is compared with one computed from an empty cache."""
import pytest

openai = pytest.importorskip("openai", reason="the `openai` package is not installed (scripts/setup.sh installs it)")

LONG = " ".join(f"word{i}" for i in range(120))


@pytest.fixture(scope="module")
def srv(start_server):
    return start_server("-np", "2", "-c", "1024", "-n", "32")


def complete(srv, prompt, **kw):
    status, body, _ = srv.request("POST", "/v1/completions", {"prompt": prompt, "max_tokens": 8, "temperature": 0, **kw})
    assert status == 200, body
    return body


def test_repeated_prompt_reuses_the_cache_and_answers_the_same(srv):
    cold = complete(srv, LONG, cache_prompt=False)
    n = cold["usage"]["prompt_tokens"]
    assert cold["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    warm = complete(srv, LONG)
    # Everything but the last prompt token (whose logits give the first answer token) came from the cache.
    assert warm["usage"]["prompt_tokens_details"]["cached_tokens"] == n - 1
    assert warm["choices"][0]["text"] == cold["choices"][0]["text"]
    # A longer prompt with the same beginning reuses the shared part only.
    longer = complete(srv, LONG + " and then some more words")
    assert n - 1 <= longer["usage"]["prompt_tokens_details"]["cached_tokens"] < longer["usage"]["prompt_tokens"]
    assert longer["choices"][0]["text"] == complete(srv, LONG + " and then some more words", cache_prompt=False)["choices"][0]["text"]
    # A prompt that diverges early reuses only the common start, and still answers as from scratch.
    other = complete(srv, "word0 word1 something else entirely")
    assert other["usage"]["prompt_tokens_details"]["cached_tokens"] <= 4
    assert other["choices"][0]["text"] == complete(srv, "word0 word1 something else entirely", cache_prompt=False)["choices"][0]["text"]


def test_a_chat_reuses_its_earlier_turns(srv):
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "Hello"}]
    first = client.chat.completions.create(model="any", messages=messages, max_tokens=6, temperature=0)
    messages += [{"role": "assistant", "content": first.choices[0].message.content}, {"role": "user", "content": "More"}]
    second = client.chat.completions.create(model="any", messages=messages, max_tokens=6, temperature=0)
    assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 1
    again = client.chat.completions.create(model="any", messages=messages, max_tokens=6, temperature=0,
                                           extra_body={"cache_prompt": False})
    assert again.usage.prompt_tokens_details.cached_tokens == 0
    assert again.choices[0].message.content == second.choices[0].message.content
    metrics = srv.metrics()
    assert metrics["bitnet:prompt_tokens_cached_total"] >= second.usage.prompt_tokens_details.cached_tokens
