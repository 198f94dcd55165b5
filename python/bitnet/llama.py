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
from collections import OrderedDict
from typing import Any, Callable, Dict, Generator, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from bitnet import _core
from bitnet import chat_formats as _chat_formats

# llama.cpp's LLAMA_DEFAULT_SEED: "pick a random seed".
LLAMA_DEFAULT_SEED = 0xFFFFFFFF
# ggml's type ids of the KV-cache types the engine has (llama-cpp-python's type_k / type_v).
GGML_TYPE_F16 = 1
GGML_TYPE_Q8_0 = 8

LogitsProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]
StoppingCriteria = Callable[[np.ndarray, np.ndarray], bool]


class LogitsProcessorList(List[LogitsProcessor]):
    """llama-cpp-python's list of logits processors: each maps (input_ids, scores) to new scores."""

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


class StoppingCriteriaList(List[StoppingCriteria]):
    """llama-cpp-python's list of stopping criteria: generation stops when any returns True."""

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> bool:
        return any(criterion(input_ids, logits) for criterion in self)


class LlamaState:
    """A snapshot of a Llama's evaluation state (llama-cpp-python's class): the tokens in the cache, their
    logits, and the KV cache's bytes (``llama_state``: every layer's K and V for positions 0..n_tokens-1, f16).
    ``Llama.load_state`` restores it so that generation continues exactly; it also restores the seed the following
    calls draw from (``rng_state``, bitnet's addition)."""

    def __init__(self, input_ids: np.ndarray, scores: np.ndarray, n_tokens: int, llama_state: bytes,
                 llama_state_size: int, seed: int, rng_state: Optional[tuple] = None, scores_valid: bool = True):
        self.input_ids = input_ids
        self.scores = scores
        self.n_tokens = n_tokens
        self.llama_state = llama_state
        self.llama_state_size = llama_state_size
        self.seed = seed
        self.rng_state = rng_state
        self.scores_valid = scores_valid


class LlamaRAMCache:
    """llama-cpp-python's in-memory prompt cache: LlamaState snapshots keyed by the tokens they hold, up to
    ``capacity_bytes`` (least recently used dropped first). With ``Llama.set_cache(cache)``, a completion whose
    prompt shares a longer prefix with a saved state than with the current cache starts from that state, and
    every completion saves its state."""

    def __init__(self, capacity_bytes: int = 2 << 30):
        self.capacity_bytes = capacity_bytes
        self.cache_state: "OrderedDict[Tuple[int, ...], LlamaState]" = OrderedDict()

    @property
    def cache_size(self) -> int:
        return sum(state.llama_state_size for state in self.cache_state.values())

    def _find_longest_prefix_key(self, key: Tuple[int, ...]) -> Optional[Tuple[int, ...]]:
        best, best_len = None, 0
        for k in self.cache_state:
            n = Llama.longest_token_prefix(k, key)
            if n > best_len:
                best, best_len = k, n
        return best

    def __getitem__(self, key: Sequence[int]) -> LlamaState:
        found = self._find_longest_prefix_key(tuple(key))
        if found is None:
            raise KeyError("no cached state shares a prefix with these tokens")
        self.cache_state.move_to_end(found)
        return self.cache_state[found]

    def __contains__(self, key: Sequence[int]) -> bool:
        return self._find_longest_prefix_key(tuple(key)) is not None

    def __setitem__(self, key: Sequence[int], value: LlamaState) -> None:
        key = tuple(key)
        self.cache_state.pop(key, None)
        self.cache_state[key] = value
        while self.cache_state and self.cache_size > self.capacity_bytes:
            self.cache_state.popitem(last=False)


LlamaCache = LlamaRAMCache  # llama-cpp-python's alias


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
    read to its end or closed) raises BitnetError instead of waiting, so a forgotten stream cannot deadlock.

    As in llama-cpp-python, the tokens in the KV cache are ``input_ids[:n_tokens]``, and a completion reuses the
    longest common prefix of its prompt with them (only the rest is evaluated); ``reset()`` forgets them."""

    def __init__(
        self,
        model_path: str,
        *,
        n_gpu_layers: int = 0,
        split_mode: int = 1,
        main_gpu: int = 0,
        tensor_split: Optional[List[float]] = None,
        vocab_only: bool = False,
        use_mmap: bool = True,
        use_mlock: bool = False,
        kv_overrides: Optional[Dict[str, Union[bool, int, float, str]]] = None,
        seed: int = LLAMA_DEFAULT_SEED,
        n_ctx: int = 512,
        n_batch: int = 512,
        n_ubatch: int = 512,
        n_threads: Optional[int] = None,
        n_threads_batch: Optional[int] = None,
        rope_scaling_type: Optional[int] = -1,
        pooling_type: Union[int, str] = -1,
        attention_type: int = -1,
        rope_freq_base: float = 0.0,
        rope_freq_scale: float = 0.0,
        yarn_ext_factor: float = -1.0,
        yarn_attn_factor: float = 1.0,
        yarn_beta_fast: float = 32.0,
        yarn_beta_slow: float = 1.0,
        yarn_orig_ctx: int = 0,
        logits_all: bool = False,
        embedding: bool = False,
        offload_kqv: bool = True,
        flash_attn: bool = False,
        op_offload: Optional[bool] = None,
        swa_full: Optional[bool] = None,
        no_perf: bool = False,
        last_n_tokens_size: int = 64,
        lora_base: Optional[str] = None,
        lora_scale: float = 1.0,
        lora_path: Optional[str] = None,
        numa: Union[bool, int] = False,
        chat_format: Optional[str] = None,
        chat_handler: Optional[Any] = None,
        draft_model: Optional[Any] = None,
        tokenizer: Optional[Any] = None,
        type_k: Optional[Union[int, str]] = None,
        type_v: Optional[Union[int, str]] = None,
        spm_infill: bool = False,
        verbose: bool = True,
        head: str = "f16",
        quantize: bool = False,
        packing: str = "auto",
    ):
        """model_path: a GGUF file or a Hugging Face checkpoint directory (config.json + safetensors).
        n_ctx=0 takes the model's trained context. n_threads: this model's own thread pool (None: BITNET_THREADS
        or all logical CPUs). n_batch / n_ubatch: the engine evaluates min(n_batch, n_ubatch) tokens per step (one
        batch level: llama.cpp's logical and physical batch are the same thing here). head="int8" or "int4" uses an
        int8 or a grouped int4 copy of the output head (faster decode, slightly different logits). logits_all:
        eval() keeps every position's logits in ``scores`` (n_ctx x n_vocab float32), as llama-cpp-python does.
        quantize: ternarize a full-precision Hugging Face checkpoint (no quantization_config) with absmean;
        without it such a checkpoint is refused. packing: the ternary weights in memory, "2bit" or "base3" (1.6
        bits per weight: 20% fewer bytes, faster single-stream decode where memory bandwidth bounds it, slower
        batches); "auto": base3 for a TQ1_0 file on a CPU with AVX-512 VBMI (elsewhere base3 decodes slower than
        2bit), 2bit for others. use_mmap is accepted for compatibility: the
        embedding is always memory-mapped. embedding: accepted as llama-cpp-python takes it (embed() works either way); pooling_type:
        how embed() pools the final hidden states, llama.cpp's LLAMA_POOLING_TYPE_* number or name (-1,
        unspecified: mean; 0 none, 1 mean, 2 cls, 3 last; rank is refused).
        chat_format: None (or "chat_template.default") renders the model file's own chat template; a known name
        ("llama-2", "llama-3", "chatml", "qwen", "mistral-instruct", "gemma", "phi-3", "zephyr", "alpaca",
        "vicuna", "openchat") renders bitnet's Jinja template of that format (bitnet/chat_formats.py).
        flash_attn: accepted either way: the engine has one attention kernel (blocked over the cached keys and
        values), so there is nothing to switch. offload_kqv / op_offload / no_perf: accepted, no effect on the CPU
        engine. type_k / type_v: the KV cache's types: None, 1 = GGML_TYPE_F16 or "f16" (the default), or
        8 = GGML_TYPE_Q8_0 or "q8_0" (about half the memory; other types are refused).
        last_n_tokens_size: how many recent tokens the repeat / frequency / presence penalties look at.
        Every other llama-cpp-python argument is accepted at its neutral value and refused otherwise, naming it
        (docs/python.md lists them with the reasons)."""
        self._init_args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._pooling = _pooling_name(pooling_type)
        cache_k = _kv_cache_type("type_k", type_k)
        cache_v = _kv_cache_type("type_v", type_v)
        _refuse_unless(
            split_mode=(split_mode, (0, 1), "there is one device (no multi-GPU split)"),
            main_gpu=(main_gpu, (0,), "there is one device"),
            tensor_split=(tensor_split, (None,), "there is one device (no multi-GPU split)"),
            vocab_only=(vocab_only, (False,), "the model is always loaded with its weights"),
            use_mlock=(use_mlock, (False,), "memory locking is not implemented"),
            kv_overrides=(kv_overrides or None, (None,), "metadata overrides are not implemented"),
            rope_scaling_type=(rope_scaling_type, (None, -1), "RoPE scaling comes from the model file"),
            attention_type=(attention_type, (-1, 1), "attention is causal only (1 or -1)"),
            rope_freq_base=(rope_freq_base, (0.0,), "RoPE settings come from the model file"),
            rope_freq_scale=(rope_freq_scale, (0.0,), "RoPE settings come from the model file"),
            yarn_ext_factor=(yarn_ext_factor, (-1.0,), "RoPE settings come from the model file"),
            yarn_attn_factor=(yarn_attn_factor, (1.0,), "RoPE settings come from the model file"),
            yarn_beta_fast=(yarn_beta_fast, (32.0,), "RoPE settings come from the model file"),
            yarn_beta_slow=(yarn_beta_slow, (1.0,), "RoPE settings come from the model file"),
            yarn_orig_ctx=(yarn_orig_ctx, (0,), "RoPE settings come from the model file"),
            swa_full=(swa_full, (None, False, True), "it must be None or a bool (no sliding-window models)"),
            lora_base=(lora_base, (None,), "LoRA adapters are not implemented"),
            lora_path=(lora_path, (None,), "LoRA adapters are not implemented"),
            lora_scale=(lora_scale, (1.0,), "LoRA adapters are not implemented"),
            numa=(numa, (False, 0), "NUMA placement is not implemented"),
            chat_handler=(chat_handler, (None,), "give chat_format= (a known name) or use the model's template"),
            draft_model=(draft_model, (None,), "speculative decoding is not implemented"),
            tokenizer=(tokenizer, (None,), "the model file's tokenizer is always used"),
            spm_infill=(spm_infill, (False,), "infill (suffix=) is not implemented"),
        )
        for name, flag in (("flash_attn", flash_attn), ("offload_kqv", offload_kqv), ("no_perf", no_perf),
                           ("embedding", embedding), ("logits_all", logits_all), ("use_mmap", use_mmap)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        if op_offload not in (None, False, True):
            raise TypeError(f"op_offload must be None or a bool, got {op_offload!r}")
        if not isinstance(n_ubatch, int) or n_ubatch <= 0:
            raise ValueError(f"n_ubatch must be a positive int, got {n_ubatch!r}")
        if n_threads_batch is not None and n_threads_batch != n_threads:
            raise ValueError(f"n_threads_batch={n_threads_batch!r} is not supported: one thread pool serves prompt "
                             "and generation; give n_threads")
        if not isinstance(last_n_tokens_size, int) or last_n_tokens_size < 0:
            raise ValueError(f"last_n_tokens_size must be a non-negative int, got {last_n_tokens_size!r}")
        self.chat_format = chat_format
        self._chat_template = None  # a shipped format's (template, stop strings); None: the model's template
        if chat_format is not None and chat_format not in _chat_formats.MODEL_TEMPLATE_NAMES:
            if chat_format not in _chat_formats.CHAT_FORMATS:
                raise ValueError(f"chat_format={chat_format!r} is not supported; known formats: "
                                 f"{', '.join(_chat_formats.known_names())} (None: the model's own template)")
            fmt = _chat_formats.CHAT_FORMATS[chat_format]
            self._chat_template = (_core.ChatTemplate(fmt.template), list(fmt.stop))
        self.model_path = model_path
        self.verbose = verbose
        self.n_batch = n_batch
        self.last_n_tokens_size = last_n_tokens_size
        self._loaded = _core.LlamaCore(model_path, n_ctx=n_ctx, n_batch=min(n_batch, n_ubatch),
                                       n_threads=n_threads or 0, head=head, quantize=quantize, type_k=cache_k,
                                       type_v=cache_v, packing=packing)
        self.logits_all = logits_all
        self.cache: Optional[Any] = None
        # llama-cpp-python's evaluation state: the tokens in the cache and their logits.
        self.n_tokens = 0
        self.input_ids = np.zeros(self._engine.n_ctx, dtype=np.intc)
        n_vocab_model = self._engine.n_vocab_model
        self.scores = np.zeros((self._engine.n_ctx if logits_all else 1, n_vocab_model), dtype=np.single)
        self._scores_valid = False  # whether scores hold the logits of position n_tokens - 1 (eval() writes them)
        self._seed = seed if seed not in (-1, LLAMA_DEFAULT_SEED) else int.from_bytes(os.urandom(8), "little")
        self._rng = random.Random(self._seed)
        if n_gpu_layers:  # -1 (or more than the layers): all of them, as llama-cpp-python; a split is refused
            self._engine.offload(n_gpu_layers)
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

    def __getstate__(self) -> Dict[str, Any]:
        """Pickling keeps the constructor's arguments (as llama-cpp-python does); unpickling loads the model again."""
        return dict(self._init_args)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(**state)

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

    def token_nl(self) -> int:
        """The id of the newline ("\\n") token."""
        ids = self.tokenize(b"\n", add_bos=False, special=False)
        return ids[-1] if ids else -1

    def pooling_type(self) -> str:
        return self._pooling

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

    def set_cache(self, cache: Optional[Any]) -> None:
        """A prompt cache (LlamaRAMCache, or any object with llama-cpp-python's BaseLlamaCache methods: key lookup
        by longest token prefix, __contains__, __setitem__), or None to stop using one."""
        if cache is not None and not all(hasattr(cache, m) for m in ("__getitem__", "__setitem__", "__contains__")):
            raise ValueError(f"set_cache needs a LlamaRAMCache (or None), got {type(cache).__name__}; "
                             "LlamaDiskCache is not provided by bitnet")
        self.cache = cache

    # ---- evaluation (llama-cpp-python's low-level state) ---------------------------------------------------------
    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluates tokens after the n_tokens already in the cache; their logits go to ``scores`` (every row with
        logits_all=True, else the last one), the tokens to ``input_ids``. Completion calls reuse what eval() put
        in the cache when their prompt starts with it."""
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
        self._scores_valid = True

    def reset(self) -> None:
        """Forgets the evaluated tokens (the next eval() starts at position 0, and the next completion evaluates
        its whole prompt)."""
        self.n_tokens = 0
        self._scores_valid = False

    @property
    def _input_ids(self) -> np.ndarray:
        return self.input_ids[: self.n_tokens]

    @property
    def _scores(self) -> np.ndarray:
        """The logits of the evaluated positions: [n_tokens, n_vocab] with logits_all, else the last row [1, n_vocab]."""
        return self.scores[: self.n_tokens, :] if self.logits_all else self.scores[: min(self.n_tokens, 1), :]

    @property
    def eval_tokens(self) -> List[int]:
        return self._input_ids.tolist()

    @property
    def eval_logits(self) -> List[List[float]]:
        return self._scores.tolist()

    @staticmethod
    def logits_to_logprobs(logits: np.ndarray, axis: int = -1) -> np.ndarray:
        """log-softmax along `axis`, in float32 (as llama-cpp-python)."""
        logits = np.asarray(logits, dtype=np.single)
        shifted = logits - logits.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    @staticmethod
    def longest_token_prefix(a: Sequence[int], b: Sequence[int]) -> int:
        n = 0
        for x, y in zip(a, b):
            if x != y:
                break
            n += 1
        return n

    def _last_logits(self, idx: Optional[int]) -> np.ndarray:
        if self.n_tokens == 0 or not self._scores_valid:
            raise ValueError("no logits to sample from: eval() tokens first (completion calls and reset() do not "
                             "leave logits in scores)")
        if idx is None or idx == self.n_tokens - 1:
            return self.scores[self.n_tokens - 1 if self.logits_all else 0]
        if not self.logits_all:
            raise ValueError(f"sample(idx={idx}) needs logits_all=True (only the last position's logits are kept)")
        if not 0 <= idx < self.n_tokens:
            raise ValueError(f"sample(idx={idx}) is outside the {self.n_tokens} evaluated positions")
        return self.scores[idx]

    def _sampler(self, top_k, top_p, min_p, typical_p, temp, repeat_penalty, frequency_penalty, presence_penalty,
                 tfs_z, mirostat_mode, mirostat_eta, mirostat_tau, penalize_nl, grammar) -> "_core.Sampler":
        extras = _check_sampling_extras(typical_p=typical_p, tfs_z=tfs_z, mirostat_mode=mirostat_mode,
                                        mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta)
        if penalize_nl is not True:
            raise ValueError(f"penalize_nl={penalize_nl!r} is not supported: the penalties apply to every token, "
                             "newline included")
        options = self._options(None, temp, top_p, min_p, top_k, repeat_penalty, frequency_penalty,
                                presence_penalty, None, None, add_bos=True, grammar=grammar)
        return _core.Sampler(self._engine, {**{k: options[k] for k in (
            "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "frequency_penalty", "presence_penalty",
            "repeat_last_n", "seed", "grammar")}, **extras})

    def sample(
        self,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        temp: float = 0.80,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_eta: float = 0.1,
        mirostat_tau: float = 5.0,
        penalize_nl: bool = True,
        logits_processor: Optional[LogitsProcessorList] = None,
        grammar: Optional[LlamaGrammar] = None,
        idx: Optional[int] = None,
    ) -> int:
        """A token id picked from the logits of the last evaluated position (or position ``idx`` with
        logits_all) by the library's sampler chain (penalties -> top-k -> typical -> top-p -> min-p -> temperature;
        mirostat_mode 1/2 instead of the cuts; greedy at temp 0), seeded from the Llama's seed. logits_processor: callables (input_ids, scores) -> scores run
        first. grammar: only tokens that keep the text a prefix of the grammar (from the empty text)."""
        logits = self._last_logits(idx)
        if logits_processor is not None:
            logits = np.asarray(logits_processor(self._input_ids, logits.copy()), dtype=np.single)
        sampler = self._sampler(top_k, top_p, min_p, typical_p, temp, repeat_penalty, frequency_penalty,
                                presence_penalty, tfs_z, mirostat_mode, mirostat_eta, mirostat_tau, penalize_nl,
                                grammar)
        return sampler.sample(logits)

    def generate(
        self,
        tokens: Sequence[int],
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        temp: float = 0.80,
        repeat_penalty: float = 1.0,
        reset: bool = True,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        penalize_nl: bool = True,
        logits_processor: Optional[LogitsProcessorList] = None,
        stopping_criteria: Optional[StoppingCriteriaList] = None,
        grammar: Optional[LlamaGrammar] = None,
    ) -> Generator[int, Optional[Sequence[int]], None]:
        """A generator of token ids (llama-cpp-python's low-level loop): evaluates ``tokens``, then yields a
        sampled token and evaluates it before the next one, without end: stop iterating at EOS or when you have
        enough. Sending a list of ids (``gen.send(ids)``) evaluates them after the yielded token. reset=True
        reuses the longest common prefix of ``tokens`` with the cache (the rest is evaluated); reset=False
        appends ``tokens`` after the n_tokens already there. One sampler chain serves the whole generation
        (penalties remember its tokens); stopping_criteria(input_ids, logits) -> True ends it."""
        sampler = self._sampler(top_k, top_p, min_p, typical_p, temp, repeat_penalty, frequency_penalty,
                                presence_penalty, tfs_z, mirostat_mode, mirostat_eta, mirostat_tau, penalize_nl,
                                grammar)
        return self._generate_tokens(sampler, [int(t) for t in tokens], reset, logits_processor, stopping_criteria)

    def _generate_tokens(self, sampler, tokens, reset, logits_processor, stopping_criteria):
        if reset:
            prefix = self.longest_token_prefix(self._input_ids, tokens) if self._engine.prefix_reuse else 0
            if prefix == len(tokens) == self.n_tokens and self._scores_valid:
                tokens = []  # the whole prompt is evaluated and its logits are at hand
            else:
                prefix = min(prefix, len(tokens) - 1)  # evaluate at least one token, for its logits
                self.n_tokens = max(prefix, 0)
                tokens = tokens[self.n_tokens:]
                self._scores_valid = False
        while True:
            self.eval(tokens)
            logits = self._last_logits(None)
            if logits_processor is not None:
                logits = np.asarray(logits_processor(self._input_ids, logits.copy()), dtype=np.single)
            token = sampler.sample(logits)
            if stopping_criteria is not None and stopping_criteria(self._input_ids, logits):
                return
            more = yield token
            tokens = [token] + [int(t) for t in (more or [])]

    # ---- state ------------------------------------------------------------------------------------------------
    def save_state(self) -> LlamaState:
        """The evaluation state: input_ids, scores, n_tokens and the KV cache of positions 0..n_tokens-1."""
        data = self._engine.save_cache(self.n_tokens)
        scores = self.scores[: self.n_tokens].copy() if self.logits_all else self.scores[:1].copy()
        if self.verbose:
            print(f"Llama.save_state: {len(data)} bytes for {self.n_tokens} tokens", file=sys.stderr)
        return LlamaState(input_ids=self.input_ids.copy(), scores=scores, n_tokens=self.n_tokens, llama_state=data,
                          llama_state_size=len(data), seed=self._seed, rng_state=self._rng.getstate(),
                          scores_valid=self._scores_valid)

    def load_state(self, state: LlamaState) -> None:
        """Restores save_state()'s snapshot (from this model, or one of the same shape): the KV cache, input_ids,
        n_tokens, scores and the seed, so that generation continues exactly. A snapshot from a model of another
        shape or a larger context is refused, naming the mismatch."""
        n = int(state.n_tokens)
        ids = [int(t) for t in np.asarray(state.input_ids)[:n]]
        if len(ids) != n:
            raise ValueError(f"load_state: the state has {len(np.asarray(state.input_ids))} input_ids for "
                             f"n_tokens={n}")
        self.n_tokens = 0
        self._scores_valid = False
        self._engine.load_cache(bytes(state.llama_state), ids)
        self.input_ids[:] = 0
        self.input_ids[:n] = ids
        scores = np.asarray(state.scores, dtype=np.single)
        if self.logits_all:
            self.scores[:len(scores)] = scores
        elif len(scores):
            self.scores[0] = scores[-1]
        self.n_tokens = n
        self._scores_valid = bool(getattr(state, "scores_valid", True)) and n > 0 and len(scores) > 0 and (
            not self.logits_all or len(scores) >= n)
        self._seed = state.seed
        rng_state = getattr(state, "rng_state", None)
        if rng_state is not None:
            self._rng.setstate(rng_state)
        else:
            self._rng = random.Random(state.seed)

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
        self.reset()  # the cache is overwritten
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

    # ---- generation with prefix reuse ------------------------------------------------------------------------
    def _before_generation(self, prompt: str, add_bos: bool) -> None:
        """Hands the engine what its cache holds (input_ids[:n_tokens]); with a prompt cache, first loads the
        saved state sharing the longest prefix with the prompt when it beats the current cache. Until the
        generation ends, n_tokens is 0 (a generation that fails leaves nothing to reuse)."""
        if self.cache is not None:
            ids = self.tokenize(prompt, add_bos=add_bos and self._engine.add_bos_default, special=True)
            try:
                item = self.cache[ids]
            except KeyError:
                item = None
            if item is not None and (self.longest_token_prefix(np.asarray(item.input_ids)[:item.n_tokens], ids)
                                     > self.longest_token_prefix(self._input_ids, ids)):
                self.load_state(item)
        self._engine.set_cached_tokens(self._input_ids.tolist())
        self.n_tokens = 0
        self._scores_valid = False

    def _after_generation(self) -> None:
        """input_ids / n_tokens from what the cache now holds (the prompt and the generated tokens evaluated)."""
        cached = self._engine.cached_tokens()
        self.input_ids[: len(cached)] = cached
        self.n_tokens = len(cached)
        if self.cache is not None and cached:
            self.cache[list(cached)] = self.save_state()

    def _generate_blocking(self, prompt: str, options: Dict[str, Any]) -> Dict[str, Any]:
        self._before_generation(prompt, options["add_bos"])
        r = self._engine.generate(prompt, options)
        self._after_generation()
        return r

    def _stream(self, prompt: str, options: Dict[str, Any]):
        self._before_generation(prompt, options["add_bos"])
        return self._engine.stream(prompt, options)  # started now: a busy engine or bad options raise here

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
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        model: Optional[str] = None,
        stopping_criteria: Optional[StoppingCriteriaList] = None,
        logits_processor: Optional[LogitsProcessorList] = None,
        grammar: Optional[LlamaGrammar] = None,
        logit_bias: Optional[Dict[Union[int, str], float]] = None,
    ) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """Text completion, an OpenAI ``text_completion`` dict, or an iterator of chunks with stream=True.
        max_tokens None or <= 0 generates until the end of text or the context is full. ``grammar`` constrains
        the text (LlamaGrammar); ``logit_bias`` adds to token logits ({id: bias}, -inf bans). logprobs=N: each
        generated token's log-probability and the N most likely alternatives (OpenAI's text_completion logprobs
        object; llama-cpp-python's logits_all=True is not needed). The prompt's longest common prefix with the
        cache (input_ids[:n_tokens]) is not evaluated again."""
        if not isinstance(prompt, str):
            raise TypeError("prompt must be a str (token-id prompts are not supported)")
        _unsupported(suffix=(suffix, None, "infill is not implemented"),
                     stopping_criteria=(stopping_criteria, None, "per-token Python callbacks run in Llama.generate()"),
                     logits_processor=(logits_processor, None, "per-token Python callbacks run in Llama.generate()"))
        extras = _check_sampling_extras(typical_p=typical_p, tfs_z=tfs_z, mirostat_mode=mirostat_mode,
                                        mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta)
        if logprobs is not None:
            if isinstance(logprobs, bool) or not isinstance(logprobs, int) or logprobs < 0:
                raise ValueError(f"logprobs must be None or a non-negative int, got {logprobs!r}")
            if echo:
                raise ValueError("logprobs with echo=True is not supported: the prompt's log-probabilities are not "
                                 "computed")
            if stream:
                raise ValueError("logprobs with stream=True is not supported: streamed pieces are text, not tokens")
        options = self._options(max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, frequency_penalty,
                                presence_penalty, stop, seed, add_bos=True, grammar=grammar, logit_bias=logit_bias,
                                top_logprobs=logprobs)
        options.update(extras)
        meta = {"id": f"cmpl-{uuid.uuid4()}", "created": int(time.time()), "model": model or self.model_path}
        if stream:
            return self._completion_chunks(prompt, options, echo, meta)
        r = self._generate_blocking(prompt, options)
        text = prompt + r["text"] if echo else r["text"]
        lp = self._completion_logprobs(prompt, r) if logprobs is not None else None
        return {
            **{"id": meta["id"], "object": "text_completion", "created": meta["created"], "model": meta["model"]},
            "choices": [{"text": text, "index": 0, "logprobs": lp, "finish_reason": r["finish_reason"]}],
            "usage": _usage(r),
        }

    __call__ = create_completion

    def _completion_chunks(self, prompt: str, options: dict, echo: bool, meta: dict) -> Iterator[Dict[str, Any]]:
        stream = self._stream(prompt, options)

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
                self._after_generation()

        return chunks()

    def _completion_logprobs(self, prompt: str, r: Dict[str, Any]) -> Dict[str, Any]:
        """OpenAI's text_completion logprobs: tokens, text_offset (in the prompt + text), token_logprobs and
        top_logprobs ({token text: logprob}, the chosen token included, as llama-cpp-python writes it); tokens
        past a stop string are left out."""
        out = {"tokens": [], "text_offset": [], "token_logprobs": [], "top_logprobs": []}
        for rec in self._logprob_records(prompt, r):
            alternatives: Dict[str, float] = {}
            for alt_text, _, alt_lp in rec["top"]:
                alternatives.setdefault(alt_text, alt_lp)
            alternatives[rec["text"]] = rec["logprob"]
            out["tokens"].append(rec["text"])
            out["text_offset"].append(rec["offset"])
            out["token_logprobs"].append(rec["logprob"])
            out["top_logprobs"].append(alternatives)
        return out

    def _logprob_records(self, prompt: str, r: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Per generated token (up to the end of the returned text): its text and bytes, offset in prompt + text,
        logprob, and the alternatives as (text, bytes, logprob)."""
        context = self.tokenize(prompt, add_bos=False, special=True)[-4:]
        records = r.get("logprobs", [])
        tokens = [rec[0] for rec in records]
        end, produced, out = len(prompt) + len(r["text"]), b"", []
        for i, (token, logprob, top) in enumerate(records):
            offset = len(prompt) + len(produced.decode("utf-8", errors="ignore"))
            if offset >= end:
                break
            prev = (list(context) + tokens[:i])[-4:]

            def piece(t: int) -> bytes:
                return self.detokenize([t], prev_tokens=prev) if prev else self.detokenize([t])

            own = piece(token)
            alts = [(b.decode("utf-8", errors="ignore"), b, lp) for b, lp in ((piece(a), lp) for a, lp in top)]
            out.append({"text": own.decode("utf-8", errors="ignore"), "bytes": own, "offset": offset,
                        "logprob": logprob, "top": alts})
            produced += own
        return out

    # ---- chat -------------------------------------------------------------------------------------------------
    def apply_chat_template(self, messages: List[Dict[str, Any]], add_generation_prompt: bool = True) -> str:
        """The prompt that the chat format (chat_format=, else the model's chat template) makes of OpenAI-style
        messages."""
        pairs = _message_pairs(messages)
        if self._chat_template is not None:
            return self._chat_template[0].render(pairs, self._engine.bos_piece, self._engine.eos_piece,
                                                 add_generation_prompt)
        return self._engine.apply_chat_template(pairs, add_generation_prompt)

    def create_chat_completion(
        self,
        messages: List[Dict[str, Any]],
        functions: Optional[List[Dict[str, Any]]] = None,
        function_call: Optional[Any] = None,
        tools: Optional[List[Dict[str, Any]]] = None,
        tool_choice: Optional[Any] = None,
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        stream: bool = False,
        stop: Optional[Union[str, List[str]]] = None,
        seed: Optional[int] = None,
        response_format: Optional[Dict[str, Any]] = None,
        max_tokens: Optional[int] = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        model: Optional[str] = None,
        logits_processor: Optional[LogitsProcessorList] = None,
        grammar: Optional[LlamaGrammar] = None,
        logit_bias: Optional[Dict[Union[int, str], float]] = None,
        logprobs: Optional[bool] = None,
        top_logprobs: Optional[int] = None,
    ) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """Chat completion with the chat format (chat_format=, else the model's template): an OpenAI
        ``chat.completion`` dict, or an iterator of ``chat.completion.chunk`` dicts with stream=True.
        ``response_format``: {"type": "json_object"} (optionally with a "schema", as llama-cpp-python takes it) or
        OpenAI's {"type": "json_schema", "json_schema": {"schema": ...}}; ``grammar``: a LlamaGrammar (at most one
        of the two). logprobs=True (with top_logprobs=N alternatives): OpenAI's chat logprobs object. A chat that
        continues an earlier one evaluates only what the cache does not already hold."""
        _unsupported(functions=(functions or None, None, "function calling is not implemented"),
                     function_call=(function_call, None, "function calling is not implemented"),
                     tools=(tools or None, None, "tool calling is not implemented in bitnet.Llama"),
                     tool_choice=(tool_choice if tool_choice not in ("none", "auto") else None, None,
                                  "tool calling is not implemented in bitnet.Llama"),
                     logits_processor=(logits_processor, None, "per-token Python callbacks run in Llama.generate()"))
        extras = _check_sampling_extras(typical_p=typical_p, tfs_z=tfs_z, mirostat_mode=mirostat_mode,
                                        mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta)
        if logprobs not in (None, False, True):
            raise ValueError(f"logprobs must be a bool in a chat completion, got {logprobs!r}")
        if top_logprobs is not None:
            if not logprobs:
                raise ValueError("top_logprobs needs logprobs=True")
            if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or top_logprobs < 0:
                raise ValueError(f"top_logprobs must be a non-negative int, got {top_logprobs!r}")
        if logprobs and stream:
            raise ValueError("logprobs with stream=True is not supported: streamed pieces are text, not tokens")
        if response_format is not None:
            if grammar is not None:
                raise ValueError("give response_format or grammar, not both")
            grammar = _response_format_grammar(response_format)
        prompt = self.apply_chat_template(messages)
        if self._chat_template is not None and self._chat_template[1]:  # the format's end-of-turn text
            stop = ([stop] if isinstance(stop, str) else list(stop or [])) + self._chat_template[1]
        # The template writes BOS itself when the model wants one.
        options = self._options(max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, frequency_penalty,
                                presence_penalty, stop, seed, add_bos=False, grammar=grammar, logit_bias=logit_bias,
                                top_logprobs=(top_logprobs or 0) if logprobs else None)
        options.update(extras)
        meta = {"id": f"chatcmpl-{uuid.uuid4()}", "created": int(time.time()), "model": model or self.model_path}
        if stream:
            return self._chat_chunks(prompt, options, meta)
        r = self._generate_blocking(prompt, options)
        lp = self._chat_logprobs(prompt, r) if logprobs else None
        return {
            "id": meta["id"], "object": "chat.completion", "created": meta["created"], "model": meta["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": r["text"]}, "logprobs": lp,
                         "finish_reason": r["finish_reason"]}],
            "usage": _usage(r),
        }

    def _chat_logprobs(self, prompt: str, r: Dict[str, Any]) -> Dict[str, Any]:
        """OpenAI's chat logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}], "refusal": None}."""
        content = [{"token": rec["text"], "logprob": rec["logprob"], "bytes": list(rec["bytes"]),
                    "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(b)} for t, b, lp in rec["top"]]}
                   for rec in self._logprob_records(prompt, r)]
        return {"content": content, "refusal": None}

    def _chat_chunks(self, prompt: str, options: dict, meta: dict) -> Iterator[Dict[str, Any]]:
        stream = self._stream(prompt, options)

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
                self._after_generation()

        return chunks()

    def create_chat_completion_openai_v1(self, *args: Any, **kwargs: Any) -> Any:
        """create_chat_completion's result as the openai package's types (ChatCompletion, or an iterator of
        ChatCompletionChunk with stream=True); needs `pip install openai`."""
        try:
            from openai.types.chat import ChatCompletion, ChatCompletionChunk
        except ImportError as e:
            raise ImportError("create_chat_completion_openai_v1 needs the openai package (pip install openai)") from e
        out = self.create_chat_completion(*args, **kwargs)
        if kwargs.get("stream"):
            return (ChatCompletionChunk(**chunk) for chunk in out)
        return ChatCompletion(**out)

    @classmethod
    def from_pretrained(cls, repo_id: str, filename: Optional[str] = None,
                        additional_files: Optional[List[str]] = None,
                        local_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                        local_dir_use_symlinks: Union[bool, str] = "auto",
                        cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                        revision: str = "main", **kwargs: Any) -> "Llama":
        """As llama-cpp-python: the model of a Hugging Face Hub repository, downloaded into (or found in) the cache
        that huggingface_hub uses, then loaded with ``Llama(model_path=..., **kwargs)``.

        filename: a file of the repository, a glob matching exactly one (``"*i2_s.gguf"``) or a quantization tag
        (``"TQ2_0"``); None: the repository's GGUF file, or its safetensors checkpoint (config, tokenizer, weights).
        additional_files: more files of the repository to fetch beside it. local_dir: the files are also placed
        there (copied; symlinks to the cache with ``local_dir_use_symlinks=True``) and loaded from there.
        cache_dir: the hub cache folder (default: HF_HUB_CACHE, or HF_HOME/hub). revision: branch, tag or commit.
        HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply as in huggingface_hub.
        """
        if local_dir_use_symlinks not in ("auto", True, False):
            raise ValueError(f"local_dir_use_symlinks must be 'auto', True or False, got {local_dir_use_symlinks!r}")
        cache = os.fspath(cache_dir) if cache_dir is not None else None
        verbose = bool(kwargs.get("verbose", True))
        spec = repo_id if filename is None else f"{repo_id}:{filename}"
        got = _core.hub_pull(spec, revision=revision, cache_dir=cache, verbose=verbose)
        files = list(got["files"])
        if additional_files:
            # The same commit as the model, so that the files belong together.
            extra = _core.hub_pull(repo_id, revision=got["commit"], files=list(additional_files), cache_dir=cache,
                                   verbose=verbose)
            files += [f for f in extra["files"] if f not in files]
        model_path = got["model"]
        if local_dir is not None:
            root = os.fspath(local_dir)
            for f in files:
                src = os.path.join(got["snapshot"], f)
                dst = os.path.join(root, f)
                os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
                if os.path.lexists(dst):
                    os.remove(dst)
                if local_dir_use_symlinks is True:
                    os.symlink(os.path.realpath(src), dst)
                else:  # "auto" copies, as huggingface_hub does today
                    import shutil
                    shutil.copyfile(src, dst)
            rel = os.path.relpath(got["model"], got["snapshot"])
            model_path = root if rel == "." else os.path.join(root, rel)
        return cls(model_path=model_path, **kwargs)

    def tokenizer(self) -> Any:
        """Not provided: llama-cpp-python's LlamaTokenizer wrapper; use tokenize() / detokenize()."""
        raise NotImplementedError("Llama.tokenizer() is not supported by bitnet: use llm.tokenize() / "
                                  "llm.detokenize()")

    @property
    def ctx(self) -> Any:
        raise NotImplementedError("Llama.ctx (a llama.cpp context pointer) does not exist in bitnet")

    @property
    def model(self) -> Any:
        raise NotImplementedError("Llama.model (a llama.cpp model pointer) does not exist in bitnet")

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _options(self, max_tokens, temperature, top_p, min_p, top_k, repeat_penalty, frequency_penalty,
                 presence_penalty, stop, seed, add_bos, grammar=None, logit_bias=None, top_logprobs=None) -> Dict[str, Any]:
        if grammar is not None and not isinstance(grammar, LlamaGrammar):
            raise TypeError(f"grammar must be a LlamaGrammar (LlamaGrammar.from_string(...)), got {type(grammar).__name__}")
        return {
            "grammar": grammar._grammar if grammar is not None else None, "logit_bias": logit_bias,
            "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "min_p": min_p, "top_k": top_k,
            "repeat_penalty": repeat_penalty, "frequency_penalty": frequency_penalty,
            "presence_penalty": presence_penalty, "repeat_last_n": self.last_n_tokens_size, "stop": stop,
            # Without a seed, each call draws one from the Llama's seed: reproducible runs, different calls.
            "seed": seed if seed is not None else self._rng.getrandbits(64), "add_bos": add_bos,
            "top_logprobs": top_logprobs,
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
    """name=(value, neutral, reason): a value other than the neutral one is refused, naming the argument."""
    for name, (value, default, reason) in args.items():
        if value is not default and value != default:
            raise ValueError(f"{name}={value!r} is not supported by bitnet: {reason}")


def _refuse_unless(**args: Any) -> None:
    """name=(value, accepted values, reason)."""
    for name, (value, accepted, reason) in args.items():
        if not any(value is a or (type(value) is type(a) and value == a) or
                   (isinstance(value, (int, float)) and not isinstance(value, bool) and
                    isinstance(a, (int, float)) and not isinstance(a, bool) and value == a) for a in accepted):
            raise ValueError(f"{name}={value!r} is not supported by bitnet: {reason}")


def _check_sampling_extras(typical_p, tfs_z, mirostat_mode, mirostat_tau, mirostat_eta) -> Dict[str, Any]:
    """Typical and mirostat sampling go to the library's sampler chain; tail-free sampling (removed from llama.cpp
    too) passes only with its neutral value."""
    _refuse_unless(tfs_z=(tfs_z, (1.0,), "tail-free sampling is not implemented (1.0: off)"))
    return {"typical_p": typical_p, "mirostat_mode": mirostat_mode, "mirostat_tau": mirostat_tau,
            "mirostat_eta": mirostat_eta}


def _kv_cache_type(name: str, value: Any) -> str:
    if value is None:
        return "f16"
    if isinstance(value, str) and value in ("f16", "q8_0"):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in (GGML_TYPE_F16, GGML_TYPE_Q8_0):
        return "f16" if value == GGML_TYPE_F16 else "q8_0"
    raise ValueError(f"{name}={value!r} is not supported by bitnet: the KV cache is f16 or q8_0 "
                     f"(None, \"f16\", \"q8_0\", GGML_TYPE_F16 = {GGML_TYPE_F16} or GGML_TYPE_Q8_0 = {GGML_TYPE_Q8_0})")


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
