#!/usr/bin/env python3
"""Golden reference for bitnet's training stack, in the style of llm.c's test_gpt2: a tiny BitNet b1.58
causal LM written in plain PyTorch (the same BitLinear STE definition as the C++ code), its logits, loss,
every parameter gradient, and the losses of 10 AdamW steps with gradient clipping.

    .venv/bin/python tests/golden/make_bitnet_golden.py tests/golden/bitnet_tiny.safetensors

Needs torch (PyPI, CPU is enough). The output is a safetensors file of f32 tensors (written here without the
safetensors package): init.<param>, input_ids, targets, logits, loss, grad.<param>, adamw_losses; the model
config is in the header's __metadata__. tests/unit/test_golden.cpp reads it.
"""
import json
import struct
import sys

import torch
import torch.nn.functional as F

CONFIG = dict(vocab_size=16, hidden_size=16, intermediate_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
              rope_theta=10000.0, rms_norm_eps=1e-5, activation="relu2", tie_embeddings=True)
LR, BETAS, EPS, WEIGHT_DECAY, CLIP, STEPS = 1e-2, (0.9, 0.95), 1e-8, 0.1, 1.0, 10


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def ste(x, q):
    # Forward value exactly q, gradient the identity: the BitNet detach trick x + (q - x).detach(), arranged
    # so that the forward does not round q + x - x.
    return q.detach() + (x - x.detach())


def activation_quant(x):  # per-token absmax int8 (BitNet b1.58 training tips)
    scale = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    return (x * scale).round().clamp(-128, 127) / scale


def weight_quant(w):  # per-tensor absmean ternary
    scale = 1.0 / w.abs().mean().clamp(min=1e-5)
    return (w * scale).round().clamp(-1, 1) / scale


def bitlinear(x, w):  # the norm before it is the block's shared RMSNorm
    return F.linear(ste(x, activation_quant(x)), ste(w, weight_quant(w)))


def rope(x, theta):  # x [B, T, H, D]; element i pairs with i + D/2; tables in float64 like the C++ code
    _, t, _, d = x.shape
    half = d // 2
    inv_freq = theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / d)
    angle = torch.arange(t, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos = angle.cos().float()[None, :, None, :]
    sin = angle.sin().float()[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attention(q, k, v):  # q [B, Hq, T, D], k/v [B, Hkv, T, D]; head h reads kv head h // (Hq / Hkv)
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    t = q.shape[2]
    scores = q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5)
    scores = scores.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def forward(p, ids, c=CONFIG):
    b, t = ids.shape
    hd = c["hidden_size"] // c["num_heads"]
    eps = c["rms_norm_eps"]
    h = p["model.embed_tokens.weight"][ids]
    for i in range(c["num_layers"]):
        pre = f"model.layers.{i}."
        x = rms_norm(h, p[pre + "input_layernorm.weight"], eps)
        q = bitlinear(x, p[pre + "self_attn.q_proj.weight"]).view(b, t, c["num_heads"], hd)
        k = bitlinear(x, p[pre + "self_attn.k_proj.weight"]).view(b, t, c["num_kv_heads"], hd)
        v = bitlinear(x, p[pre + "self_attn.v_proj.weight"]).view(b, t, c["num_kv_heads"], hd)
        q = rope(q, c["rope_theta"]).transpose(1, 2)
        k = rope(k, c["rope_theta"]).transpose(1, 2)
        a = attention(q, k, v.transpose(1, 2)).transpose(1, 2).reshape(b, t, -1)
        a = rms_norm(a, p[pre + "self_attn.attn_sub_norm.weight"], eps)
        h = h + bitlinear(a, p[pre + "self_attn.o_proj.weight"])
        x = rms_norm(h, p[pre + "post_attention_layernorm.weight"], eps)
        m = F.relu(bitlinear(x, p[pre + "mlp.gate_proj.weight"])) ** 2 * bitlinear(x, p[pre + "mlp.up_proj.weight"])
        m = rms_norm(m, p[pre + "mlp.ffn_sub_norm.weight"], eps)
        h = h + bitlinear(m, p[pre + "mlp.down_proj.weight"])
    h = rms_norm(h, p["model.norm.weight"], eps)
    return F.linear(h, p["model.embed_tokens.weight" if c["tie_embeddings"] else "lm_head.weight"])


def make_params(gen, c=CONFIG):
    hd = c["hidden_size"] // c["num_heads"]
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], c["hidden_size"])}
    for i in range(c["num_layers"]):
        pre = f"model.layers.{i}."
        hs, f, kv = c["hidden_size"], c["intermediate_size"], c["num_kv_heads"] * hd
        shapes.update({
            pre + "input_layernorm.weight": (hs,), pre + "self_attn.q_proj.weight": (hs, hs),
            pre + "self_attn.k_proj.weight": (kv, hs), pre + "self_attn.v_proj.weight": (kv, hs),
            pre + "self_attn.attn_sub_norm.weight": (hs,), pre + "self_attn.o_proj.weight": (hs, hs),
            pre + "post_attention_layernorm.weight": (hs,), pre + "mlp.gate_proj.weight": (f, hs),
            pre + "mlp.up_proj.weight": (f, hs), pre + "mlp.ffn_sub_norm.weight": (f,),
            pre + "mlp.down_proj.weight": (hs, f)})
    shapes["model.norm.weight"] = (c["hidden_size"],)
    if not c["tie_embeddings"]:
        shapes["lm_head.weight"] = (c["vocab_size"], c["hidden_size"])
    params = {}
    for name, shape in shapes.items():
        if "norm" in name:  # gains near 1, not exactly 1, so their gradients matter
            params[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            params[name] = 0.1 * torch.randn(shape, generator=gen)
    return {k: v.float().requires_grad_(True) for k, v in params.items()}


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].detach().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for b in blobs:
            f.write(b)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "bitnet_tiny.safetensors"
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    params = make_params(gen)
    init = {"init." + k: v.detach().clone() for k, v in params.items()}
    ids = torch.randint(0, CONFIG["vocab_size"], (2, 8), generator=gen)
    targets = torch.randint(0, CONFIG["vocab_size"], (2, 8), generator=gen)
    targets[1, 3] = -1  # an ignored position

    logits = forward(params, ids)
    loss = F.cross_entropy(logits.view(-1, CONFIG["vocab_size"]), targets.view(-1), ignore_index=-1)
    loss.backward()
    grads = {"grad." + k: v.grad.detach().clone() for k, v in params.items()}

    decay = [v for k, v in params.items() if "norm" not in k and "embed" not in k]
    no_decay = [v for k, v in params.items() if "norm" in k or "embed" in k]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=EPS, foreach=False)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        step_loss = F.cross_entropy(forward(params, ids).view(-1, CONFIG["vocab_size"]), targets.view(-1), ignore_index=-1)
        step_loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP)
        opt.step()
        losses.append(step_loss.item())

    tensors = dict(init)
    tensors.update(grads)
    tensors.update({"input_ids": ids.float(), "targets": targets.float(), "logits": logits.detach(),
                    "loss": loss.detach().reshape(1), "adamw_losses": torch.tensor(losses)})
    meta = {"config": json.dumps(CONFIG), "adamw": json.dumps(dict(lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY,
                                                                   clip=CLIP, steps=STEPS)),
            "torch": torch.__version__}
    write_safetensors(out, tensors, meta)
    print(f"wrote {out}: loss {loss.item():.6f}, adamw losses {losses[0]:.6f} -> {losses[-1]:.6f}")


if __name__ == "__main__":
    main()
