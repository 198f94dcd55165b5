"""Constrained generation from Python: LlamaGrammar (llama-cpp-python's class), response_format, logit_bias.
The model is random (SentencePiece vocabulary): whatever it writes under a grammar must match the grammar, which
the `jsonschema` package checks for schemas when it is installed."""
import json

import pytest

import bitnet
from bitnet import Llama, LlamaGrammar

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0},
                                           "tag": {"enum": ["a", "b"]}},
          "required": ["ok", "n", "tag"], "additionalProperties": False}
PLAIN = dict(top_k=0, min_p=0.0, top_p=1.0, temperature=1.0, repeat_penalty=1.3)


@pytest.fixture(scope="module")
def llm(tiny_model):
    m = Llama(str(tiny_model), n_ctx=512, verbose=False)
    yield m
    m.close()


def test_grammar_from_string_constrains_completion(llm):
    g = LlamaGrammar.from_string('root ::= ("yes" | "no") "-" [0-9]{2}\n')
    assert g.matches("yes-42") and not g.matches("maybe")
    for seed in (1, 2, 3):
        text = llm.create_completion("Q:", max_tokens=40, seed=seed, grammar=g, **PLAIN)["choices"][0]["text"]
        assert g.matches(text), text


@pytest.mark.parametrize("fmt", [
    {"type": "json_object", "schema": SCHEMA},                                    # llama-cpp-python's form
    {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}},      # OpenAI's form
])
def test_response_format_schema(llm, fmt):
    r = llm.create_chat_completion([{"role": "user", "content": "JSON please"}], max_tokens=200, seed=4,
                                   response_format=fmt, **PLAIN)
    assert r["choices"][0]["finish_reason"] == "stop"
    doc = json.loads(r["choices"][0]["message"]["content"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, SCHEMA)


def test_streamed_grammar_output_equals_whole(llm):
    g = LlamaGrammar.from_json_schema(json.dumps(SCHEMA))
    whole = llm.create_completion("x", max_tokens=200, seed=9, grammar=g, **PLAIN)["choices"][0]["text"]
    parts = [c["choices"][0]["text"] for c in llm.create_completion("x", max_tokens=200, seed=9, grammar=g, stream=True, **PLAIN)]
    assert "".join(parts) == whole
    assert g.matches(whole)


def test_logit_bias(llm):
    plain = llm.create_completion("Hello", max_tokens=1, temperature=0)
    first = llm.tokenize(plain["choices"][0]["text"].encode(), add_bos=False)
    banned = llm.create_completion("Hello", max_tokens=1, temperature=0, logit_bias={first[-1]: float("-inf")})
    assert banned["choices"][0]["text"] != plain["choices"][0]["text"]


def test_errors_name_what_is_wrong(llm):
    with pytest.raises(bitnet.BitnetError, match=r"grammar:1:10: rule 'nope' is used but never defined"):
        LlamaGrammar.from_string("root ::= nope\n")
    with pytest.raises(bitnet.BitnetError, match=r"#/properties/s/pattern"):
        LlamaGrammar.from_json_schema('{"properties": {"s": {"type": "string", "pattern": "x"}}}')
    with pytest.raises(TypeError, match="LlamaGrammar"):
        llm.create_completion("x", grammar='root ::= "a"')
    with pytest.raises(ValueError, match="tools"):
        llm.create_chat_completion([{"role": "user", "content": "x"}], tools=[{"type": "function"}])
    with pytest.raises(ValueError, match="response_format type"):
        llm.create_chat_completion([{"role": "user", "content": "x"}], response_format={"type": "xml"})
