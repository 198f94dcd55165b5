"""PyTorch interop: ``BitLinear``, a ``torch.nn.Module`` that trains with the straight-through estimator (STE) in
PyTorch and, in eval mode, runs inference through bitnet's int8 x ternary kernels; and export of its weights to
GGUF in a ternary file layout (TQ2_0, TQ1_0 or I2_S) that bitnet reads; ``BitNetForCausalLM``, a whole model built
from it that trains under DistributedDataParallel / FSDP and exports to a GGUF the engine runs.

Quantization follows BitNet b1.58 (and the C++ nn::BitLinear): activations per token to int8 with absmax
(s = 127 / max(max|x|, 1e-5), round half to even, clamp to [-128, 127]); weights per tensor to {-1, 0, 1} with
absmean (gamma = max(mean|W|, 1e-5), W_t = clamp(round(W / gamma), -1, 1), W ~ W_t * gamma).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Dict, Iterable, Mapping, Optional

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("bitnet.torch needs PyTorch: pip install torch") from e

import bitnet

_ACT_FLOOR = 1e-5
_WEIGHT_FLOOR = 1e-5


def quantize_activations_ste(x: torch.Tensor) -> torch.Tensor:
    """Per-token absmax int8 fake quantization; gradients pass straight through."""
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=_ACT_FLOOR)
    q = (x * s).round().clamp(-128, 127) / s
    return x + (q - x).detach()


def quantize_weights_ste(w: torch.Tensor) -> torch.Tensor:
    """Per-tensor absmean ternary fake quantization; gradients pass straight through."""
    gamma = w.abs().mean().clamp(min=_WEIGHT_FLOOR)
    q = (w / gamma).round().clamp(-1, 1) * gamma
    return w + (q - w).detach()


class BitLinear(torch.nn.Module):
    """y = Qa(RMSNorm(x)) Qw(W)^T (+ bias). Training (or whenever gradients are needed): fake quantization with
    the STE in PyTorch. Eval mode without gradients: the weights are packed once into bitnet's kernel layout
    (re-packed when they change) and x goes through the int8 x ternary kernel (fused RMSNorm + quantization when
    with_norm)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *, with_norm: bool = False,
                 eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = torch.nn.Parameter(torch.zeros(out_features, **factory)) if bias else None
        self.norm_weight = torch.nn.Parameter(torch.ones(in_features, **factory)) if with_norm else None
        torch.nn.init.normal_(self.weight, std=0.02)
        self._packed: Optional[bitnet.TernaryMatrix] = None
        self._packed_key = None

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"with_norm={self.norm_weight is not None}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return self.forward_ste(x)
        return self.forward_kernel(x)

    def forward_ste(self, x: torch.Tensor) -> torch.Tensor:
        """The training forward: fake quantization in PyTorch, differentiable through the STE."""
        if self.norm_weight is not None:
            x = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.norm_weight
        return F.linear(quantize_activations_ste(x), quantize_weights_ste(self.weight), self.bias)

    def packed(self) -> bitnet.TernaryMatrix:
        """The weights in bitnet's kernel layout (absmean-quantized by the C++ library), cached until they change."""
        key = (self.weight.data_ptr(), self.weight._version)
        if self._packed is None or self._packed_key != key:
            self._packed = bitnet.TernaryMatrix.quantize(_to_numpy(self.weight))
            self._packed_key = key
        return self._packed

    @torch.no_grad()
    def forward_kernel(self, x: torch.Tensor) -> torch.Tensor:
        """Inference through bitnet's kernels (CPU, float32 in and out; other devices/dtypes are converted)."""
        w = self.packed()
        x2 = _to_numpy(x).reshape(-1, self.in_features)
        if self.norm_weight is not None:
            qa = bitnet.quantize_activations(x2, norm_weight=_to_numpy(self.norm_weight), eps=self.eps)
            y = w.matmul(qa)
        else:
            y = w(x2)
        out = torch.from_numpy(y).reshape(*x.shape[:-1], self.out_features)
        if self.bias is not None:
            out = out + self.bias.detach().to(torch.float32).cpu()
        return out.to(device=x.device, dtype=x.dtype)

    def ternary_weights(self) -> tuple:
        """(int8 values [out, in] in {-1, 0, 1}, scale) as the C++ library quantizes the current weights."""
        return bitnet.quantize_absmean(_to_numpy(self.weight))


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    # Zero-copy for contiguous CPU float32 tensors.
    return t.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()


_GGUF_TYPES = {"tq2_0": ("tq2_0", "TQ2_0"), "tq1_0": ("tq1_0", "TQ1_0"), "i2_s": ("i2_s", "I2_S")}


def state_dict_to_gguf(state_dict: Mapping[str, torch.Tensor], path: str, ternary: Iterable[str],
                       ternary_type: str = "tq2_0", metadata: Optional[Dict[str, object]] = None,
                       float_type: str = "f32") -> None:
    """Writes a state dict as GGUF: the tensors named in `ternary` absmean-quantized (by the C++ library) and
    packed in ternary_type (tq2_0 | tq1_0 | i2_s), every other tensor as f32 (or f16 with float_type="f16").
    Names are kept (GGUF allows at most 63 bytes). I2_S shares its type id with a type upstream retired, so an
    I2_S file gets bitnet.cpp's general.file_type = 40 (MOSTLY_I2_S) unless metadata says otherwise: that is
    how readers tell the two apart."""
    fmt = _GGUF_TYPES.get(ternary_type.lower())
    if fmt is None:
        raise ValueError(f"ternary_type must be one of {', '.join(_GGUF_TYPES)}, got {ternary_type!r}")
    if float_type not in ("f32", "f16"):
        raise ValueError(f"float_type must be 'f32' or 'f16', got {float_type!r}")
    ternary = set(ternary)
    missing = ternary - set(state_dict)
    if missing:
        raise KeyError(f"ternary tensors not in the state dict: {sorted(missing)}")
    tensors: Dict[str, object] = {}
    for name, t in state_dict.items():
        a = _to_numpy(t)
        if name in ternary:
            if a.ndim != 2:
                raise ValueError(f"ternary tensor '{name}' must be 2-D, got shape {tuple(a.shape)}")
            values, scale = bitnet.quantize_absmean(a)
            tensors[name] = (bitnet.pack_ternary(values, fmt[0], scale), fmt[1], a.shape)
        else:
            tensors[name] = a.astype(np.float16) if float_type == "f16" else a
    meta = dict(metadata or {})
    if fmt[0] == "i2_s":
        meta.setdefault("general.file_type", 40)
    bitnet.write_gguf(path, tensors, meta)


def export_gguf(module: torch.nn.Module, path: str, ternary_type: str = "tq2_0",
                metadata: Optional[Dict[str, object]] = None, float_type: str = "f32") -> None:
    """A module's state dict as GGUF, the weight of every BitLinear inside it ternary (see state_dict_to_gguf)."""
    ternary = [f"{name}.weight" if name else "weight" for name, m in module.named_modules() if isinstance(m, BitLinear)]
    state = {k: v for k, v in module.state_dict().items()}
    state_dict_to_gguf(state, path, ternary, ternary_type, metadata, float_type)


def save_pretrained_gguf(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, object], path: str,
                         ternary_type: str = "tq2_0", tokenizer_dir: Optional[str] = None) -> Dict[str, object]:
    """A whole model as a GGUF that bitnet's engine (and bitnet.Llama) loads: `state_dict` holds latent (float)
    weights under Hugging Face names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, ...)
    and `config` is the matching config.json (BitNetForCausalLM or LlamaForCausalLM with quantization_config).
    Written as an HF directory and converted by the C++ converter (bitnet.convert_model, as `bitnet convert
    --quantize`): projections absmean-ternarized into ternary_type. tokenizer_dir: a folder whose tokenizer.json
    (and tokenizer_config.json) are carried over, so the GGUF has a tokenizer. Returns the converter's summary."""
    with tempfile.TemporaryDirectory(prefix="bitnet-export-") as hf_dir:
        with open(os.path.join(hf_dir, "config.json"), "w") as f:
            json.dump(dict(config), f)
        bitnet.write_safetensors(os.path.join(hf_dir, "model.safetensors"),
                                 {k: _to_numpy(v) for k, v in state_dict.items()})
        if tokenizer_dir is not None:
            for name in ("tokenizer.json", "tokenizer_config.json"):
                if os.path.exists(os.path.join(tokenizer_dir, name)):
                    shutil.copy(os.path.join(tokenizer_dir, name), hf_dir)
        return bitnet.convert_model(hf_dir, path, ternary_type=ternary_type, quantize=True)


def load_ternary_from_gguf(path: str, name: str) -> tuple:
    """(int8 values [out, in], scale) of a ternary tensor in a GGUF file (TQ2_0, TQ1_0 or I2_S)."""
    f = bitnet.GgufFile(path)
    info = next((t for t in f.tensors if t["name"] == name), None)
    if info is None:
        raise KeyError(f"{path}: no tensor '{name}'")
    rows, cols = info["shape"]
    return bitnet.unpack_ternary(f.tensor(name), info["type"].lower(), rows, cols)


# A whole BitNet b1.58 model built from BitLinear (transformers' BitNetForCausalLM names), for training in PyTorch,
# under DistributedDataParallel or FSDP, and export to GGUF (torch_model.py).
from bitnet.torch_model import BitNetConfig, BitNetForCausalLM  # noqa: E402
