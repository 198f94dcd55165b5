"""The official `openai` Python client against `bitnet serve`: chat and text completions, streaming, stop
strings, seeds, budgets, log-probabilities, the model list. The model is random, so texts are gibberish; every
check compares the server with itself (same seed, stream vs whole) or with what was observed first."""
import pytest

openai = pytest.importorskip("openai", reason="the `openai` package is not installed (scripts/setup.sh installs it)")

# llama.cpp's sampler fields, which the client passes through extra_body: sampling from the whole vocabulary, and
# a strong repetition penalty, without which the random model repeats its last token whatever the seed (its
# logits put the current token ~60 above all others).
PLAIN = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 10}
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Tell me a story."}]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_models_list(client):
    models = client.models.list().data
    assert [m.id for m in models] == ["tiny-gpt2.gguf"]


def test_chat_completion(client):
    r = client.chat.completions.create(model="any", messages=MESSAGES, max_tokens=12, seed=1)
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 5
    assert 1 <= r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    if choice.finish_reason == "length":
        assert r.usage.completion_tokens == 12


def test_text_completion_budget(client):
    r = client.completions.create(model="any", prompt="Once upon a time", max_tokens=7, temperature=0)
    assert r.object == "text_completion"
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 7
    # The server's cap (-n 64) bounds what a request may ask for.
    big = client.completions.create(model="any", prompt="Once", max_tokens=5000, temperature=0)
    assert big.usage.completion_tokens <= 64


def test_seed_reproducibility(client):
    def run(seed):
        return client.completions.create(model="any", prompt="The weather", max_tokens=32, temperature=1.0,
                                         top_p=1.0, seed=seed, extra_body=PLAIN).choices[0].text
    a, b, c = run(1234), run(1234), run(99)
    assert a == b
    assert a != c  # 32 tokens drawn from a 50257-token vocabulary: equal by chance is not plausible


def test_stream_equals_whole_answer(client):
    kw = dict(model="any", messages=MESSAGES, max_tokens=20, temperature=0.9, seed=7, extra_body=PLAIN)
    whole = client.chat.completions.create(**kw)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    # Text completions stream the same way.
    kw = dict(model="any", prompt="Hello there", max_tokens=16, temperature=0.9, seed=8, extra_body=PLAIN)
    whole = client.completions.create(**kw)
    streamed = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw))
    assert streamed == whole.choices[0].text


@pytest.mark.parametrize("stream", [False, True])
def test_stop_strings_end_the_text_before_them(client, stream):
    kw = dict(model="any", prompt="In the beginning", max_tokens=48, temperature=1.0, top_p=1.0,
              seed=4242, extra_body=PLAIN)
    full = client.completions.create(**kw).choices[0].text
    assert len(full) >= 12, full
    stop = full[len(full) // 2: len(full) // 2 + 3]
    kw["stop"] = ["\u0001never", stop]
    if stream:
        chunks = list(client.completions.create(stream=True, **kw))
        text = "".join(c.choices[0].text for c in chunks)
        reason = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason][0]
    else:
        r = client.completions.create(**kw)
        text, reason = r.choices[0].text, r.choices[0].finish_reason
    assert text == full[:full.find(stop)]
    assert reason == "stop"


def test_logprobs(client):
    r = client.chat.completions.create(model="any", messages=MESSAGES, max_tokens=6, temperature=0,
                                       logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for t in content:
        assert t.logprob <= 0
        assert len(t.top_logprobs) == 3
        tops = [x.logprob for x in t.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        assert t.top_logprobs[0].token == t.token  # greedy: the chosen token is the most likely one
    c = client.completions.create(model="any", prompt="Hi", max_tokens=4, temperature=0, logprobs=2)
    lp = c.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == c.usage.completion_tokens
    assert "".join(lp.tokens) == c.choices[0].text


def test_bad_values_raise_bad_request(client):
    for kw in (dict(temperature=1e6), dict(top_p=-1), dict(presence_penalty=5), dict(max_tokens=0), dict(n=2)):
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="any", messages=MESSAGES, **kw)
        assert e.value.status_code == 400
        assert e.value.body["type"] == "invalid_request_error"
