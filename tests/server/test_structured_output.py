"""Structured output through the official `openai` client: response_format (json_schema, json_object, and the
client's own pydantic parse), llama-server's `grammar` and `json_schema` fields, logit_bias, and the 400s for
what the server does not do. The model is random, so whatever it writes is gibberish: every document it writes
under a schema must still validate against that schema (checked by the `jsonschema` package)."""
import json

import pytest

openai = pytest.importorskip("openai", reason="the `openai` package is not installed (scripts/setup.sh installs it)")
jsonschema = pytest.importorskip("jsonschema", reason="the `jsonschema` package is not installed (scripts/setup.sh installs it)")

PLAIN = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.5}
MESSAGES = [{"role": "user", "content": "Describe a person as JSON."}]
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer", "minimum": 0},
        "member": {"type": "boolean"},
        "role": {"enum": ["admin", "user", None]},
    },
    "required": ["name", "age", "member", "role"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def roomy(start_server):
    """A server whose budget fits a whole bounded document."""
    return start_server("-np", "2", "-c", "512", "-n", "400")


@pytest.fixture(scope="module")
def client(roomy):
    return openai.OpenAI(base_url=roomy.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_response_format_json_schema(client, seed):
    r = client.chat.completions.create(
        model="any", messages=MESSAGES, seed=seed, temperature=1.0, max_tokens=300, extra_body=PLAIN,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    doc = json.loads(r.choices[0].message.content)
    jsonschema.validate(doc, PERSON)
    assert list(doc) == list(PERSON["properties"])  # generated in the schema's order, as OpenAI does


def test_streamed_json_schema_is_the_same_document(client):
    kw = dict(model="any", messages=MESSAGES, seed=7, temperature=1.0, max_tokens=300, extra_body=PLAIN,
              response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}})
    whole = client.chat.completions.create(**kw).choices[0].message.content
    parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **kw) if c.choices]
    assert "".join(parts) == whole
    jsonschema.validate(json.loads(whole), PERSON)


def test_pydantic_parse(client):
    pydantic = pytest.importorskip("pydantic")

    class Pet(pydantic.BaseModel):
        name: str = pydantic.Field(max_length=6)
        legs: int = pydantic.Field(ge=0)
        vaccinated: bool

    parse = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
    r = parse(model="any", messages=MESSAGES, response_format=Pet, seed=5, temperature=1.0, max_tokens=300,
              extra_body=PLAIN)
    pet = r.choices[0].message.parsed
    assert isinstance(pet, Pet) and len(pet.name) <= 6 and pet.legs >= 0


def test_json_object(client):
    r = client.chat.completions.create(model="any", messages=MESSAGES, seed=3, temperature=1.0, max_tokens=300,
                                       extra_body=PLAIN, response_format={"type": "json_object"})
    text = r.choices[0].message.content
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:
        assert text.lstrip().startswith("{")  # the budget ended the document: it still began as one


def test_grammar_and_json_schema_fields(client):
    gbnf = 'root ::= ("yes" | "no") " " [0-9]{3}\n'
    for seed in (1, 2):
        c = client.completions.create(model="any", prompt="Answer:", seed=seed, max_tokens=50, extra_body={"grammar": gbnf, **PLAIN})
        text = c.choices[0].text
        assert text.split(" ")[0] in ("yes", "no") and len(text.split(" ")[1]) == 3 and text.split(" ")[1].isdigit(), text
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3}
    c = client.completions.create(model="any", prompt="Numbers:", seed=4, max_tokens=200, extra_body={"json_schema": schema, **PLAIN})
    jsonschema.validate(json.loads(c.choices[0].text), schema)


def test_logit_bias(client, roomy):
    plain = client.completions.create(model="any", prompt="Hello", max_tokens=1, temperature=0, logprobs=5)
    lp = plain.choices[0].logprobs
    chosen = lp.tokens[0]
    runner_up = max((t for t in lp.top_logprobs[0] if t != chosen), key=lambda t: lp.top_logprobs[0][t])

    def token_id(text):
        status, body, _ = roomy.request("POST", "/tokenize", {"content": text})
        assert status == 200 and len(body["tokens"]) == 1, body
        return body["tokens"][0]

    # +100 on the runner-up makes it the greedy choice; -100 (OpenAI's ban) or false (llama-server's) removes the
    # first choice.
    forced = client.completions.create(model="any", prompt="Hello", max_tokens=1, temperature=0,
                                       logit_bias={str(token_id(runner_up)): 100})
    assert forced.choices[0].text == runner_up
    for ban in (-100, False):
        banned = client.completions.create(model="any", prompt="Hello", max_tokens=3, temperature=0,
                                           extra_body={"logit_bias": [[token_id(chosen), ban]]})
        assert chosen not in banned.choices[0].text


@pytest.mark.parametrize("extra,words", [
    ({"frobnicate": 1}, "'frobnicate' is not supported"),
    ({"tools": [{"type": "retrieval"}]}, "'tools'[0] must be"),
    ({"mirostat": 3}, "'mirostat' must be an integer in [0, 2]"),
    ({"typical_p": 0}, "'typical_p' must be a number in"),
    ({"n_probs": 3}, "'n_probs' is not supported"),
    ({"grammar": "root ::= missing\n"}, "grammar:1:10: rule 'missing' is used but never defined"),
    ({"grammar": "root ::= \"a\"", "json_schema": {}}, "at most one of"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "a+"}}}},
     "response_format.json_schema.schema: #/pattern"),
    ({"response_format": {"type": "xml"}}, "'response_format.type'"),
    ({"logit_bias": {"hello": 1}}, "'logit_bias' keys must be token ids"),
    ({"logit_bias": {"13": 1000}}, "[-100, 100]"),
])
def test_what_is_not_done_is_400_naming_it(client, extra, words):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="any", messages=MESSAGES, max_tokens=4, extra_body=extra)
    assert words in e.value.body["message"], e.value.body


def test_typical_and_mirostat_are_honoured(client):
    def text(extra=None, **kw):
        return client.completions.create(model="any", prompt="Once", max_tokens=12, **kw,
                                         extra_body={"top_k": 0, "min_p": 0.0, "repeat_penalty": 10,
                                                     **(extra or {})}).choices[0].text
    greedy = text(temperature=0)
    assert any(text(seed=s, temperature=1.0) != greedy for s in (1, 2, 3))
    # Mirostat v2 with a tiny target surprise keeps only the most likely token: greedy whatever the seed.
    assert all(text(seed=s, temperature=1.0, extra={"mirostat": 2, "mirostat_tau": 0.01}) == greedy for s in (1, 2, 3))
    hot = [text(seed=s, temperature=2.0) for s in (1, 2, 3)]
    assert [text(seed=s, temperature=2.0, extra={"typical_p": 0.05}) for s in (1, 2, 3)] != hot
