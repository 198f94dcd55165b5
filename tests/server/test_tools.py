"""Tool calling through the official `openai` client. The model is random, so a call only happens when it is
forced: by tool_choice "required" or a named function (the server's grammar), or by a grammar that makes the
model write a call in one of the shapes models use (Hermes' <tool_call> blocks here), which the server must
recognize. Arguments are validated against each tool's schema by the `jsonschema` package."""
import json

import pytest

openai = pytest.importorskip("openai", reason="the `openai` package is not installed (scripts/setup.sh installs it)")
jsonschema = pytest.importorskip("jsonschema", reason="the `jsonschema` package is not installed (scripts/setup.sh installs it)")

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                            "unit": {"enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"], "additionalProperties": False}
TIME = {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 8}}, "required": ["zone"],
        "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "get_time", "description": "Time in a zone", "parameters": TIME}}]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
PLAIN = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.3}


@pytest.fixture(scope="module")
def client(start_server):
    s = start_server("-np", "2", "-c", "1024", "-n", "300")
    return openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def check_calls(calls, names=("get_weather", "get_time")):
    assert calls
    for c in calls:
        assert c.type == "function" and c.id.startswith("call_")
        assert c.function.name in names
        jsonschema.validate(json.loads(c.function.arguments), SCHEMAS[c.function.name])


@pytest.mark.parametrize("seed", [1, 2])
def test_required_call(client, seed):
    r = client.chat.completions.create(model="any", messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                       parallel_tool_calls=False, seed=seed, temperature=1.0, max_tokens=250,
                                       extra_body=PLAIN)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert choice.message.content is None
    assert len(choice.message.tool_calls) == 1
    check_calls(choice.message.tool_calls)


def test_named_call_streamed_equals_whole(client):
    kw = dict(model="any", messages=MESSAGES, tools=TOOLS, seed=3, temperature=1.0, max_tokens=250, extra_body=PLAIN,
              tool_choice={"type": "function", "function": {"name": "get_time"}})
    whole = client.chat.completions.create(**kw).choices[0]
    assert whole.finish_reason == "tool_calls"
    check_calls(whole.message.tool_calls, names=("get_time",))
    chunks = list(client.chat.completions.create(stream=True, **kw))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [tc for d in deltas for tc in (d.tool_calls or [])]
    assert [c.function.name for c in calls] == ["get_time"]
    assert calls[0].function.arguments == whole.message.tool_calls[0].function.arguments
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert all(not d.content for d in deltas)


def test_parallel_required_calls(client):
    r = client.chat.completions.create(model="any", messages=MESSAGES, tools=TOOLS, tool_choice="required", seed=5,
                                       temperature=1.0, max_tokens=280, extra_body=PLAIN)
    if r.choices[0].finish_reason == "tool_calls":
        check_calls(r.choices[0].message.tool_calls)
    else:
        assert r.choices[0].finish_reason == "length"  # the budget ended a long list of calls


def test_auto_recognizes_a_hermes_call_and_leaves_text_alone(client):
    gbnf = 'root ::= "<tool_call>{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"" [a-z]{1,6} "\\", \\"unit\\": \\"celsius\\"}}</tool_call>"\n'
    r = client.chat.completions.create(model="any", messages=MESSAGES, tools=TOOLS, seed=1, max_tokens=100,
                                       extra_body={"grammar": gbnf, **PLAIN})
    assert r.choices[0].finish_reason == "tool_calls"
    check_calls(r.choices[0].message.tool_calls, names=("get_weather",))
    streamed = list(client.chat.completions.create(model="any", messages=MESSAGES, tools=TOOLS, seed=1, max_tokens=100,
                                                   stream=True, extra_body={"grammar": gbnf, **PLAIN}))
    calls = [tc for c in streamed if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.arguments == r.choices[0].message.tool_calls[0].function.arguments
    # Text that is not a call stays text, streamed or not.
    plain = client.chat.completions.create(model="any", messages=MESSAGES, tools=TOOLS, seed=2, max_tokens=20,
                                           extra_body={"grammar": 'root ::= "It is sunny" [.!]\n'})
    assert plain.choices[0].message.content in ("It is sunny.", "It is sunny!")
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].finish_reason == "stop"
    parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="any", messages=MESSAGES, tools=TOOLS, seed=2, max_tokens=20, stream=True,
        extra_body={"grammar": 'root ::= "It is sunny" [.!]\n'}) if c.choices]
    assert "".join(parts) == plain.choices[0].message.content


def test_a_conversation_with_calls_and_results(client):
    first = client.chat.completions.create(model="any", messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                           parallel_tool_calls=False, seed=4, temperature=1.0, max_tokens=250,
                                           extra_body=PLAIN)
    call = first.choices[0].message.tool_calls[0]
    history = MESSAGES + [first.choices[0].message.model_dump(exclude_none=True),
                          {"role": "tool", "tool_call_id": call.id, "content": "18 degrees"}]
    r = client.chat.completions.create(model="any", messages=history, tools=TOOLS, max_tokens=5, extra_body=PLAIN)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert r.usage.prompt_tokens > first.usage.prompt_tokens


@pytest.mark.parametrize("kw,words", [
    (dict(tool_choice="required"), "no 'tools'"),
    (dict(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}}), "not among the tools"),
    (dict(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "string", "pattern": "x"}}}],
          tool_choice="required"), "pattern"),
    (dict(tools=TOOLS, tool_choice="required", response_format={"type": "json_object"}), "cannot be combined"),
    (dict(tools=[{"type": "code_interpreter"}]), "'tools'[0]"),
])
def test_bad_tool_requests_are_400(client, kw, words):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="any", messages=MESSAGES, max_tokens=4, **kw)
    assert words in e.value.body["message"], e.value.body
