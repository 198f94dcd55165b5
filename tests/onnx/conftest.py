"""Fixtures for the ONNX tests: the built `bitnet` (BITNET_CLI, which ctest passes), the models to export, and a
small driver for ONNX Runtime sessions of our decoder graphs (prefill, then one token at a time through the
past_key_values inputs).
"""
import os
import pathlib
import subprocess

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLI = os.environ.get("BITNET_CLI", str(ROOT / "build" / "release" / "bitnet"))
KJV = ROOT / "models" / "kjv-bitnet-2m.gguf"
GOLDEN = ROOT / "tests" / "golden" / "hf"

onnx = pytest.importorskip("onnx", reason="the PyPI package onnx (scripts/setup.sh installs it)")
ort = pytest.importorskip("onnxruntime", reason="the PyPI package onnxruntime (scripts/setup.sh installs it)")


def bitnet(*args, check=True):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"bitnet {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def export(source, out):
    bitnet("export", source, "--onnx", out)
    return out


def engine_logits(model, tokens, tmp_path):
    out = tmp_path / f"engine-{abs(hash((str(model), tuple(tokens))))}.npy"
    bitnet("logits", "-m", model, "--tokens", ",".join(map(str, tokens)), "-o", out)
    return np.load(out)


class Decoder:
    """An ONNX Runtime session of a decoder graph with the GenAI / Optimum inputs and outputs."""

    def __init__(self, path, optimize=True):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        if not optimize:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.layers = sum(1 for n in inputs if n.startswith("past_key_values.") and n.endswith(".key"))
        shape = inputs["past_key_values.0.key"].shape
        self.kv_heads, self.head_dim = shape[1], shape[3]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def empty_cache(self, batch=1):
        z = np.zeros((batch, self.kv_heads, 0, self.head_dim), np.float32)
        return [(z, z) for _ in range(self.layers)]

    def step(self, ids, past, attention_mask=None, position_ids=None):
        """Runs `ids` [batch, seq] after `past`; returns (logits [batch, seq, vocab], present)."""
        ids = np.asarray(ids, np.int64)
        p = past[0][0].shape[2]
        if attention_mask is None:
            attention_mask = np.ones((ids.shape[0], p + ids.shape[1]), np.int64)
        if position_ids is None:
            position_ids = np.broadcast_to(np.arange(p, p + ids.shape[1], dtype=np.int64), ids.shape)
        feed = {"input_ids": ids, "attention_mask": attention_mask, "position_ids": np.ascontiguousarray(position_ids)}
        for i, (k, v) in enumerate(past):
            feed[f"past_key_values.{i}.key"] = k
            feed[f"past_key_values.{i}.value"] = v
        out = dict(zip(self.outputs, self.session.run(None, feed)))
        present = [(out[f"present.{i}.key"], out[f"present.{i}.value"]) for i in range(self.layers)]
        return out["logits"], present

    def greedy(self, prompt, n, banned=()):
        """n greedy tokens, never one of `banned` (transformers' generate(min_new_tokens=n) bans the eos ids)."""
        def pick(row):
            row = row.copy()
            row[list(banned)] = -np.inf
            return int(row.argmax())
        logits, past = self.step([prompt], self.empty_cache())
        tokens = [pick(logits[0, -1])]
        while len(tokens) < n:
            logits, past = self.step([[tokens[-1]]], past)
            tokens.append(pick(logits[0, -1]))
        return tokens
