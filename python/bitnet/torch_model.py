"""A BitNet b1.58 causal language model in PyTorch built from ``bitnet.torch.BitLinear``, with the parameter names of
transformers' ``BitNetForCausalLM`` (model.layers.N.self_attn.q_proj.weight, ...), so that what it trains exports
with ``save_pretrained_gguf`` to a GGUF the engine runs. It trains under ``torch.nn.parallel.DistributedDataParallel``
and FSDP like any module: the quantization is fake quantization with the straight-through estimator, all in
differentiable PyTorch ops.

    from bitnet.torch import BitNetConfig, BitNetForCausalLM
    model = BitNetForCausalLM(BitNetConfig(vocab_size=256, hidden_size=256, num_hidden_layers=4))
    loss = model(input_ids, labels=input_ids).loss
    model.save_pretrained_gguf("model.gguf")   # BitNetForCausalLM's arithmetic: relu^2 gate, sub-norms, tied head
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import torch
import torch.nn.functional as F


@dataclasses.dataclass
class BitNetConfig:
    """The fields of transformers' BitNetConfig that the architecture uses (defaults: a small model)."""
    vocab_size: int = 256
    hidden_size: int = 256
    intermediate_size: int = 688
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    num_key_value_heads: int = 4
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True

    def to_hf_config(self) -> Dict[str, object]:
        """config.json of the matching transformers checkpoint (latent weights, quantized online)."""
        d = dataclasses.asdict(self)
        d.update(architectures=["BitNetForCausalLM"], model_type="bitnet", hidden_act="relu2", torch_dtype="float32",
                 quantization_config={"quant_method": "bitnet", "linear_class": "autobitlinear",
                                      "quantization_mode": "online"})
        return d


class RMSNorm(torch.nn.Module):
    def __init__(self, n: int, eps: float):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _rope_tables(seq: int, head_dim: int, theta: float, device) -> tuple:
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angle = torch.arange(seq, dtype=torch.float64)[:, None] * inv[None, :]
    return angle.cos().float().to(device), angle.sin().float().to(device)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x [B, H, T, D]: element i rotates with i + D/2 (transformers' rotate_half).
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class BitNetAttention(torch.nn.Module):
    def __init__(self, c: BitNetConfig):
        super().__init__()
        from bitnet.torch import BitLinear
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.q_proj = BitLinear(c.hidden_size, self.heads * self.head_dim)
        self.k_proj = BitLinear(c.hidden_size, self.kv_heads * self.head_dim)
        self.v_proj = BitLinear(c.hidden_size, self.kv_heads * self.head_dim)
        self.o_proj = BitLinear(self.heads * self.head_dim, c.hidden_size)
        self.attn_sub_norm = RMSNorm(self.heads * self.head_dim, c.rms_norm_eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        group = self.heads // self.kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(self.attn_sub_norm(o.transpose(1, 2).reshape(b, t, -1)))


class BitNetMLP(torch.nn.Module):
    def __init__(self, c: BitNetConfig):
        super().__init__()
        from bitnet.torch import BitLinear
        self.gate_proj = BitLinear(c.hidden_size, c.intermediate_size)
        self.up_proj = BitLinear(c.hidden_size, c.intermediate_size)
        self.down_proj = BitLinear(c.intermediate_size, c.hidden_size)
        self.ffn_sub_norm = RMSNorm(c.intermediate_size, c.rms_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.ffn_sub_norm(F.relu(self.gate_proj(x)).square() * self.up_proj(x)))


class BitNetDecoderLayer(torch.nn.Module):
    def __init__(self, c: BitNetConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = BitNetAttention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = BitNetMLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class _Body(torch.nn.Module):
    def __init__(self, c: BitNetConfig):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = torch.nn.ModuleList(BitNetDecoderLayer(c) for _ in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


@dataclasses.dataclass
class CausalLMOutput:
    logits: torch.Tensor
    loss: Optional[torch.Tensor] = None


class BitNetForCausalLM(torch.nn.Module):
    """transformers' BitNetForCausalLM architecture (relu^2 gated MLP, attention and MLP sub-norms, RoPE, grouped
    KV heads) with bitnet.torch.BitLinear projections: W1.58A8 fake quantization with the STE while training."""

    def __init__(self, config: BitNetConfig, seed: Optional[int] = None):
        super().__init__()
        self.config = config
        if config.hidden_size % config.num_attention_heads or config.num_attention_heads % config.num_key_value_heads:
            raise ValueError("[BitNetForCausalLM] heads must divide hidden_size and KV heads must divide heads")
        gen = torch.random.fork_rng() if seed is not None else None
        if gen is not None:
            with gen:
                torch.manual_seed(seed)
                self._build(config)
        else:
            self._build(config)

    def _build(self, c: BitNetConfig):
        self.model = _Body(c)
        torch.nn.init.normal_(self.model.embed_tokens.weight, std=0.02)
        for m in self.modules():
            if m.__class__.__name__ == "BitLinear":
                torch.nn.init.normal_(m.weight, std=0.02)
        self.lm_head = None if c.tie_word_embeddings else torch.nn.Linear(c.hidden_size, c.vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor, labels: Optional[torch.Tensor] = None) -> CausalLMOutput:
        """logits [B, T, vocab]; with `labels` (usually input_ids), the mean next-token cross-entropy."""
        t = input_ids.shape[1]
        cos, sin = _rope_tables(t, self.config.hidden_size // self.config.num_attention_heads, self.config.rope_theta,
                                input_ids.device)
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        h = self.model.norm(x)
        logits = F.linear(h, self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        return CausalLMOutput(logits, loss)

    def save_pretrained_gguf(self, path: str, ternary_type: str = "i2_s", tokenizer_dir: Optional[str] = None):
        """The trained model as a GGUF the engine runs (bitnet.torch.save_pretrained_gguf with this config)."""
        from bitnet.torch import save_pretrained_gguf
        state = {k: v for k, v in self.state_dict().items()}
        if self.lm_head is None:
            state.pop("lm_head.weight", None)
        return save_pretrained_gguf(state, self.config.to_hf_config(), path, ternary_type, tokenizer_dir)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["BitNetConfig", "BitNetForCausalLM", "CausalLMOutput", "RMSNorm", "parameter_count"]
