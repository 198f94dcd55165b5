"""bitnet.Llama: llama-cpp-python's high-level API over the bitnet engine.

Results are OpenAI-shaped dicts; with ``stream=True`` the calls return iterators of chunks. Generation runs in
C++ with the GIL released; a stream runs on a worker thread, and leaving its loop early (break, an exception,
or dropping the iterator) stops the generation and frees the engine.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from bitnet import _core

# llama.cpp's LLAMA_DEFAULT_SEED: "pick a random seed".
LLAMA_DEFAULT_SEED = 0xFFFFFFFF


class LlamaGrammar:
    """A GBNF grammar that generated text must match (llama-cpp-python's class of the same name).

    ``LlamaGrammar.from_string(gbnf)``, ``.from_file(path)`` and ``.from_json_schema(schema_json)``; pass it as
    ``grammar=`` to create_completion / create_chat_completion. Errors name the line and column (or the schema
    keyword) that could not be honoured."""

    def __init__(self, grammar: "_core.Grammar") -> None:
        self._grammar = grammar

    @classmethod
    def from_string(cls, grammar: str, verbose: bool = True) -> "LlamaGrammar":
        return cls(_core.Grammar.parse(grammar, "grammar"))

    @classmethod
    def from_file(cls, file: Union[str, "os.PathLike[str]"], verbose: bool = True) -> "LlamaGrammar":
        with open(file, encoding="utf-8") as f:
            return cls(_core.Grammar.parse(f.read(), os.fspath(file)))

    @classmethod
    def from_json_schema(cls, json_schema: str, verbose: bool = True) -> "LlamaGrammar":
        return cls(_core.Grammar.from_json_schema(json_schema, "json_schema"))

    @property
    def gbnf(self) -> str:
        """The grammar's GBNF text (the converted one for a JSON schema)."""
        return self._grammar.gbnf

    def matches(self, text: str) -> bool:
        """Whether ``text`` is a whole sentence of the grammar."""
        return self._grammar.matches(text)


class Llama:
    """A GGUF BitNet model with its tokenizer and an inference engine (one sequence, ``n_ctx`` positions).

    One generation runs at a time per Llama: a call made while another runs (another thread, or a stream not yet
    read to its end or closed) raises BitnetError instead of waiting, so a forgotten stream cannot deadlock."""

    def __init__(
        self,
        model_path: str,
        *,
        n_gpu_layers: int = 0,
        n_ctx: int = 512,
        n_batch: int = 512,
        n_threads: Optional[int] = None,
        seed: int = LLAMA_DEFAULT_SEED,
        chat_format: Optional[str] = None,
        verbose: bool = True,
        use_mmap: bool = True,
        head: str = "f16",
        logits_all: bool = False,
        quantize: bool = False,
        embedding: bool = False,
        pooling_type: Union[int, str] = -1,
    ):
        """model_path: a GGUF file or a Hugging Face checkpoint directory (config.json + safetensors).
        n_ctx=0 takes the model's trained context. n_threads: this model's own thread pool (None: BITNET_THREADS
        or all logical CPUs). head="int8" or "int4" uses an int8 or a grouped int4 copy of the output head (faster
        decode, slightly different logits). logits_all: eval() keeps every position's logits in ``scores``
        (n_ctx x n_vocab float32), as llama-cpp-python does. quantize: ternarize a full-precision Hugging Face
        checkpoint (no quantization_config) with absmean; without it such a checkpoint is refused.
        use_mmap is accepted for compatibility: the embedding is always memory-mapped. embedding: accepted as
        llama-cpp-python takes it (embed() works either way); pooling_type: how embed() pools the final hidden
        states, llama.cpp's LLAMA_POOLING_TYPE_* number or name (-1, unspecified: mean; 0 none, 1 mean, 2 cls,
        3 last; rank is refused)."""
        self._pooling = _pooling_name(pooling_type)
        if chat_format is not None:
            raise ValueError(
                f"chat_format={chat_format!r} is not supported: bitnet renders the chat template stored in the "
                "model file"
            )
        self.model_path = model_path
        self.verbose = verbose
        self._loaded = _core.LlamaCore(model_path, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads or 0, head=head,
                                       quantize=quantize)
        self.logits_all = logits_all
        # llama-cpp-python's evaluation state: the tokens in the cache and their logits.
        self.n_tokens = 0
        self.input_ids = np.zeros(self._engine.n_ctx, dtype=np.intc)
        n_vocab_model = self._engine.n_vocab_model
        self.scores = np.zeros((self._engine.n_ctx if logits_all else 1, n_vocab_model), dtype=np.single)
        self._seed = seed if seed not in (-1, LLAMA_DEFAULT_SEED) else int.from_bytes(os.urandom(8), "little")
        self._rng = random.Random(self._seed)
        if n_gpu_layers:
            print(f"bitnet: n_gpu_layers={n_gpu_layers} ignored: this build has no GPU backend yet", file=sys.stderr)
        if verbose:
            for note in self._engine.load_notes:
                print(f"bitnet: note: {note}", file=sys.stderr)
            print(
                f"bitnet: loaded {model_path}: {self._engine.architecture}, "
                f"{self._engine.n_params / 1e6:.1f} M params, "
                f"vocab {self._engine.n_vocab}, n_ctx {self._engine.n_ctx}, {self._engine.n_threads} threads",
                file=sys.stderr,
            )

    @property
    def _engine(self) -> "_core.LlamaCore":
        if self._loaded is None:
            raise ValueError(f"Llama({self.model_path!r}) was closed")
        return self._loaded

    # ---- model facts ------------------------------------------------------------------------------------------
    def n_ctx(self) -> int:
        return self._engine.n_ctx

    def n_vocab(self) -> int:
        return self._engine.n_vocab

    def n_embd(self) -> int:
        return self._engine.n_embd

    def token_bos(self) -> int:
        return self._engine.token_bos

    def token_eos(self) -> int:
        return self._engine.token_eos

    @property
    def metadata(self) -> Dict[str, str]:
        """The GGUF metadata as strings (as llama-cpp-python's ``Llama.metadata``); arrays are left out. For a
        Hugging Face checkpoint, the keys of its config.json."""
        if os.path.isdir(self.model_path):
            with open(os.path.join(self.model_path, "config.json"), encoding="utf-8") as f:
                meta = json.load(f)
        else:
            meta = _core.GgufFile(self.model_path).metadata
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in meta.items()
                if isinstance(v, (str, int, float))}

    def set_seed(self, seed: int) -> None:
        """The seed the following calls draw their sampling seeds from."""
        self._seed = seed
        self._rng = random.Random(seed)

    # ---- evaluation (llama-cpp-python's low-level state) ---------------------------------------------------------
    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluates tokens after the n_tokens already in the cache; their logits go to ``scores`` (every row with
        logits_all=True, else the last one), the tokens to ``input_ids``. The completion calls start from an
        empty cache and leave n_tokens at 0."""
        tokens = [int(t) for t in tokens]
        if not tokens:
            return
        logits = self._engine.eval(tokens, self.n_tokens, self.logits_all)
        n = len(tokens)
        if self.logits_all:
            self.scores[self.n_tokens:self.n_tokens + n, :] = logits
        else:
            self.scores[0, :] = logits[-1]
        self.input_ids[self.n_tokens:self.n_tokens + n] = tokens
        self.n_tokens += n

    def reset(self) -> None:
        """Forgets the evaluated tokens (the next eval() starts at position 0)."""
        self.n_tokens = 0

    @property
    def _input_ids(self) -> np.ndarray:
        return self.input_ids[: self.n_tokens]

    @property
    def _scores(self) -> np.ndarray:
        """The logits of the evaluated positions: [n_tokens, n_vocab] with logits_all, else the last row [1, n_vocab]."""
        return self.scores[: self.n_tokens, :] if self.logits_all else self.scores[: min(self.n_tokens, 1), :]

    @staticmethod
    def logits_to_logprobs(logits: np.ndarray, axis: int = -1) -> np.ndarray:
        """log-softmax along `axis`, in float32 (as llama-cpp-python)."""
        logits = np.asarray(logits, dtype=np.single)
        shifted = logits - logits.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    # ---- tokens -----------------------------------------------------------------------------------------------
    def tokenize(self, text: Union[bytes, str], add_bos: bool = True, special: bool = False) -> List[int]:
        """Text (bytes as in llama-cpp-python, or str) -> token ids. special: control tokens written in the text
        become their ids."""
        return self._engine.tokenize(text, add_bos, special)

    def detokenize(self, tokens: Sequence[int], prev_tokens: Optional[Sequence[int]] = None,
                   special: bool = False) -> bytes:
        """Token ids -> bytes. With prev_tokens, the bytes these tokens add after them (a SentencePiece word's
        leading space depends on what precedes it). special: keep control tokens' text."""
        if prev_tokens:
            before = self._engine.detokenize(list(prev_tokens), special)
            both = self._engine.detokenize(list(prev_tokens) + list(tokens), special)
            return both[len(before):] if both.startswith(before) else both
        return self._engine.detokenize(list(tokens), special)

    # ---- embeddings -------------------------------------------------------------------------------------------
    def embed(self, input: Union[str, List[str]], normalize: bool = False, truncate: bool = True,
              return_count: bool = False) -> Any:
        """Embeddings as llama-cpp-python returns them: for a str, one vector (a list of floats; with pooling
        none, a list of token vectors); for a list, one per item. normalize: L2-normalize each vector. truncate:
        cut an input longer than n_ctx (else raise). return_count: also return the number of tokens."""
        self.n_tokens = 0  # the cache is overwritten
        items = [input] if isinstance(input, str) else list(input)
        out, count = [], 0
        for text in items:
            if not isinstance(text, str):
                raise TypeError(f"embed() takes str or a list of str, got {type(text).__name__}")
            rows, n = self._engine.embed(text, self._pooling, 2 if normalize else -1, truncate)
            count += n
            out.append(rows.tolist() if self._pooling == "none" else rows[0].tolist())
        result = out[0] if isinstance(input, str) else out
        return (result, count) if return_count else result

    def create_embedding(self, input: Union[str, List[str]], model: Optional[str] = None) -> Dict[str, Any]:
        """OpenAI's embeddings response ({"object": "list", "data": [...], "usage": ...}), L2-normalized as
        OpenAI's are."""
        if self._pooling == "none":
            raise ValueError("create_embedding needs one vector per input: pooling_type none gives one per token")
        vectors, count = self.embed(input, normalize=True, return_count=True)
        if isinstance(input, str):
            vectors = [vectors]
        return {"object": "list", "model": model or self.model_path,
                "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": count, "total_tokens": count}}

    # ---- completion -------------------------------------------------------------------------------------------
    def create_completion(
        self,
        prompt: str,
        suffix: Optional[str] = None,
        max_tokens: Optional[int] = 16,
        temperature: float = 0.8,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        logprobs: Optional[int] = None,
        echo: bool = False,
        stop: Optional[Union[str, List[str]]] = None,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        top_k: int = 40,
        stream: bool = False,
        seed: Optional[int] = None,
        model: Optional[str] = None,
        grammar: Optional[LlamaGrammar] = None,
        logit_bias: Optional[Dict[Union[int, str], float]] = None,
    ) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """Text completion, an OpenAI ``text_completion`` dict, or an iterator of chunks with stream=True.
        max_tokens None or <= 0 generates until the end of text or the context is full. ``grammar`` constrains
        the text (LlamaGrammar); ``logit_bias`` adds to token logits ({id: bias}, -inf bans)."""
        if not isinstance(prompt, str):
            raise TypeError("prompt must be a str (token-id prompts are not supported)")
        _unsupported(suffix=(suffix, None), logprobs=(logprobs, None), typical_p=(typical_p, 1.0))
        options = self._options(max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, frequency_penalty,
                                presence_penalty, stop, seed, add_bos=True, grammar=grammar, logit_bias=logit_bias)
        meta = {"id": f"cmpl-{uuid.uuid4()}", "created": int(time.time()), "model": model or self.model_path}
        if stream:
            return self._completion_chunks(prompt, options, echo, meta)
        self.n_tokens = 0  # generation evaluates from an empty cache
        r = self._engine.generate(prompt, options)
        text = prompt + r["text"] if echo else r["text"]
        return {
            **{"id": meta["id"], "object": "text_completion", "created": meta["created"], "model": meta["model"]},
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": r["finish_reason"]}],
            "usage": _usage(r),
        }

    __call__ = create_completion

    def _completion_chunks(self, prompt: str, options: dict, echo: bool, meta: dict) -> Iterator[Dict[str, Any]]:
        self.n_tokens = 0  # generation evaluates from an empty cache
        stream = self._engine.stream(prompt, options)  # started now: a busy engine or bad options raise here

        def chunk(text: str, finish_reason: Optional[str]) -> Dict[str, Any]:
            return {"id": meta["id"], "object": "text_completion", "created": meta["created"], "model": meta["model"],
                    "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]}

        def chunks() -> Iterator[Dict[str, Any]]:
            try:
                if echo:
                    yield chunk(prompt, None)
                for piece in stream:
                    yield chunk(piece, None)
                yield chunk("", stream.result["finish_reason"])
            finally:
                stream.close()

        return chunks()

    # ---- chat -------------------------------------------------------------------------------------------------
    def apply_chat_template(self, messages: List[Dict[str, Any]], add_generation_prompt: bool = True) -> str:
        """The prompt the model's chat template makes of OpenAI-style messages."""
        return self._engine.apply_chat_template(_message_pairs(messages), add_generation_prompt)

    def create_chat_completion(
        self,
        messages: List[Dict[str, Any]],
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        stream: bool = False,
        stop: Optional[Union[str, List[str]]] = None,
        seed: Optional[int] = None,
        max_tokens: Optional[int] = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        model: Optional[str] = None,
        logprobs: Optional[bool] = None,
        response_format: Optional[Dict[str, Any]] = None,
        grammar: Optional[LlamaGrammar] = None,
        logit_bias: Optional[Dict[Union[int, str], float]] = None,
        tools: Optional[List[Dict[str, Any]]] = None,
        tool_choice: Optional[Any] = None,
    ) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """Chat completion with the model's chat template: an OpenAI ``chat.completion`` dict, or an iterator of
        ``chat.completion.chunk`` dicts with stream=True. ``response_format``: {"type": "json_object"} (optionally
        with a "schema", as llama-cpp-python takes it) or OpenAI's {"type": "json_schema", "json_schema":
        {"schema": ...}}; ``grammar``: a LlamaGrammar (at most one of the two)."""
        _unsupported(logprobs=(logprobs, None), typical_p=(typical_p, 1.0), tools=(tools or None, None),
                     tool_choice=(tool_choice if tool_choice not in ("none", "auto") else None, None))
        if response_format is not None:
            if grammar is not None:
                raise ValueError("give response_format or grammar, not both")
            grammar = _response_format_grammar(response_format)
        prompt = self.apply_chat_template(messages)
        # The template writes BOS itself when the model wants one.
        options = self._options(max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, frequency_penalty,
                                presence_penalty, stop, seed, add_bos=False, grammar=grammar, logit_bias=logit_bias)
        meta = {"id": f"chatcmpl-{uuid.uuid4()}", "created": int(time.time()), "model": model or self.model_path}
        if stream:
            return self._chat_chunks(prompt, options, meta)
        self.n_tokens = 0  # generation evaluates from an empty cache
        r = self._engine.generate(prompt, options)
        return {
            "id": meta["id"], "object": "chat.completion", "created": meta["created"], "model": meta["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": r["text"]}, "logprobs": None,
                         "finish_reason": r["finish_reason"]}],
            "usage": _usage(r),
        }

    def _chat_chunks(self, prompt: str, options: dict, meta: dict) -> Iterator[Dict[str, Any]]:
        self.n_tokens = 0  # generation evaluates from an empty cache
        stream = self._engine.stream(prompt, options)

        def chunk(delta: Dict[str, str], finish_reason: Optional[str]) -> Dict[str, Any]:
            return {"id": meta["id"], "object": "chat.completion.chunk", "created": meta["created"],
                    "model": meta["model"],
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

        def chunks() -> Iterator[Dict[str, Any]]:
            try:
                yield chunk({"role": "assistant"}, None)
                for piece in stream:
                    yield chunk({"content": piece}, None)
                yield chunk({}, stream.result["finish_reason"])
            finally:
                stream.close()

        return chunks()

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _options(self, max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, frequency_penalty,
                 presence_penalty, stop, seed, add_bos, grammar=None, logit_bias=None) -> Dict[str, Any]:
        if grammar is not None and not isinstance(grammar, LlamaGrammar):
            raise TypeError(f"grammar must be a LlamaGrammar (LlamaGrammar.from_string(...)), got {type(grammar).__name__}")
        return {
            "grammar": grammar._grammar if grammar is not None else None, "logit_bias": logit_bias,
            "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "min_p": min_p, "top_k": top_k,
            "repeat_penalty": repeat_penalty, "frequency_penalty": frequency_penalty,
            "presence_penalty": presence_penalty, "stop": stop,
            # Without a seed, each call draws one from the Llama's seed: reproducible runs, different calls.
            "seed": seed if seed is not None else self._rng.getrandbits(64), "add_bos": add_bos,
        }

    def close(self) -> None:
        """Frees the model now (otherwise when the object is collected); a stream still running keeps it alive
        until it ends."""
        self._loaded = None

    def __enter__(self) -> "Llama":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_POOLING_NAMES = {-1: "mean", 0: "none", 1: "mean", 2: "cls", 3: "last"}


def _pooling_name(pooling_type: Union[int, str]) -> str:
    """llama.cpp's LLAMA_POOLING_TYPE_* (or its name) -> the engine's pooling name."""
    if isinstance(pooling_type, str) and pooling_type in ("none", "mean", "cls", "last"):
        return pooling_type
    if isinstance(pooling_type, int) and pooling_type in _POOLING_NAMES:
        return _POOLING_NAMES[pooling_type]
    raise ValueError(f"pooling_type={pooling_type!r} is not supported (none/0, mean/1, cls/2, last/3; -1: mean)")


def _response_format_grammar(response_format: Dict[str, Any]) -> Optional[LlamaGrammar]:
    """llama-cpp-python's and OpenAI's response_format -> the grammar that enforces it."""
    if not isinstance(response_format, dict) or not isinstance(response_format.get("type"), str):
        raise ValueError("response_format must be a dict with a 'type'")
    kind = response_format["type"]
    extra = set(response_format) - {"type", {"json_object": "schema", "json_schema": "json_schema"}.get(kind, "")}
    if extra:
        raise ValueError(f"response_format: {sorted(extra)} not supported with type {kind!r}")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = response_format.get("schema")
        return LlamaGrammar(_core.Grammar.any_json()) if schema is None else \
            LlamaGrammar(_core.Grammar.from_json_schema(json.dumps(schema), "response_format.schema"))
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or "schema" not in spec:
            raise ValueError("response_format.json_schema must be a dict with a 'schema'")
        unknown = set(spec) - {"name", "schema", "strict", "description"}
        if unknown:
            raise ValueError(f"response_format.json_schema: {sorted(unknown)} not supported")
        return LlamaGrammar(_core.Grammar.from_json_schema(json.dumps(spec["schema"]), "response_format.json_schema.schema"))
    raise ValueError(f"response_format type must be 'text', 'json_object' or 'json_schema', got {kind!r}")


def _unsupported(**args: Any) -> None:
    for name, (value, default) in args.items():
        if value != default:
            raise ValueError(f"{name}={value!r} is not supported by bitnet yet")


def _message_pairs(messages: List[Dict[str, Any]]) -> List[tuple]:
    pairs = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m:
            raise ValueError(f"messages[{i}] must be a dict with 'role' and 'content'")
        content = m.get("content") or ""
        if not isinstance(content, str):  # OpenAI's list-of-parts form: the text parts, joined
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        pairs.append((m["role"], content))
    return pairs


def _usage(r: Dict[str, Any]) -> Dict[str, int]:
    completion = len(r["tokens"])
    return {"prompt_tokens": r["prompt_tokens"], "completion_tokens": completion,
            "total_tokens": r["prompt_tokens"] + completion}
