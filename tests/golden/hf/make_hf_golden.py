#!/usr/bin/env python3
"""Golden logits and greedy tokens from Hugging Face transformers for small random-weight ternary models,
one per architecture the engine runs from an HF directory:

  bitnet_packed  BitNetForCausalLM as microsoft/bitnet-b1.58-2B-4T ships it: packed uint8 weights + weight_scale
                 (AutoBitLinear, offline, multiply convention), relu^2 gate, sub-norms, tied embedding.
  bitnet_latent  the same model with latent float weights (AutoBitLinear, online: transformers ternarizes them
                 with absmean at run time), as in microsoft/bitnet-b1.58-2B-4T-bf16.
  llama_packed   LlamaForCausalLM with transformers' default BitLinear (offline, divide convention), SiLU, no
                 sub-norms, untied head: the layout of HF1BitLLM/Llama3-8B-1.58 and Falcon3-*-1.58bit.

and, for the config layouts and RoPE variants that published checkpoints and transformers 4.x / 5.x write:

  llama3_rope_v5  HF1BitLLM/Llama3-8B-1.58's keys (quantization_config written twice, as that file has it; Python
                  keeps the last), saved in transformers 5's layout: rope_parameters {rope_type llama3, rope_theta,
                  factor 8, low/high_freq_factor, original_max_position_embeddings} and no top-level rope_theta.
  falcon3_yarn    Falcon3-1.58bit's keys (LlamaForCausalLM, explicit head_dim, rope_theta 1000042, eos list) with a
                  head_dim wider than hidden/heads and transformers 4.x rope_scaling {rope_type yarn, factor 4}.
  bitnet_dynamic  BitNetForCausalLM (packed) with rope_scaling {type: dynamic} (the legacy "type" key) and
                  max_position_embeddings 16, so that greedy decoding runs past it and the frequencies grow.
  llama_linear    LlamaForCausalLM, tied embedding, rope_parameters {rope_type linear, factor 2}, no rope_theta at
                  all (the class default 10000 applies).

    .venv/bin/python tests/golden/hf/make_hf_golden.py            # (re)write the model dirs and golden files
    .venv/bin/python tests/golden/hf/make_hf_golden.py --check    # recompute with transformers, compare

Each model dir holds config.json, model.safetensors (the HF checkpoint) and golden.safetensors: per prompt
`prompt.N` (token ids), `logits.N` (float32 [tokens, vocab], every position, from one forward pass) and
`hidden.N` / `hidden_f16kv.N` (float32 [tokens, hidden], the last norm's output), `greedy.N` (32 ids from
model.generate(do_sample=False)), `logits_f16kv.N` (the same forward pass with keys and
values rounded to f16, as the engine's cache stores them), plus `margin.N`, the smallest top-1 minus top-2 logit
gap along the greedy path (how far the reference is from a tie). transformers runs in float32 on the CPU.
The weights are built by torch.manual_seed here; the packing uses transformers' own pack_weights, so the
layout is checked by code nobody here wrote. The embedding is rounded to f16-representable values (the engine
keeps f16 heads, as bitnet.cpp's files do) so that the comparison measures the engine and not that rounding.
tests/unit/test_hf_golden.cpp reads these files.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPTS = [[1, 17, 250, 3, 99, 400, 12, 77], [5], [300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311]]
GREEDY_TOKENS = 32
SHAPE = dict(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0,
             bos_token_id=1, eos_token_id=2, torch_dtype="float32")
VARIANTS = {
    "bitnet_packed": dict(arch="BitNetForCausalLM", model_type="bitnet", hidden_act="relu2", tied=True,
                          quant=dict(quant_method="bitnet", linear_class="autobitlinear", quantization_mode="offline"),
                          packed=True, scale="multiply"),
    "bitnet_latent": dict(arch="BitNetForCausalLM", model_type="bitnet", hidden_act="relu2", tied=True,
                          quant=dict(quant_method="bitnet", linear_class="autobitlinear", quantization_mode="online"),
                          packed=False, scale=None),
    "llama_packed": dict(arch="LlamaForCausalLM", model_type="llama", hidden_act="silu", tied=False,
                         quant=dict(quant_method="bitnet", linear_class="bitlinear", quantization_mode="offline"),
                         packed=True, scale="divide"),
    "llama3_rope_v5": dict(arch="LlamaForCausalLM", model_type="llama", hidden_act="silu", tied=False,
                           quant=dict(quant_method="bitnet"), packed=True, scale="divide", duplicate_quant=True,
                           drop=["rope_theta"],
                           extra=dict(rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                                           low_freq_factor=1.0, high_freq_factor=4.0,
                                                           original_max_position_embeddings=8192),
                                      bos_token_id=1, eos_token_id=2, pretraining_tp=1, mlp_bias=False,
                                      attention_bias=False, attention_dropout=0.0, initializer_range=0.02,
                                      use_cache=True)),
    "falcon3_yarn": dict(arch="LlamaForCausalLM", model_type="llama", hidden_act="silu", tied=False,
                         quant=dict(quant_method="bitnet"), packed=True, scale="divide",
                         extra=dict(head_dim=96, rope_theta=1000042.0, eos_token_id=[2, 11], rms_norm_eps=1e-6,
                                    rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=64),
                                    max_position_embeddings=256, mlp_bias=False, attention_bias=False)),
    "bitnet_dynamic": dict(arch="BitNetForCausalLM", model_type="bitnet", hidden_act="relu2", tied=True,
                           quant=dict(quant_method="bitnet", linear_class="autobitlinear", quantization_mode="offline"),
                           packed=True, scale="multiply",
                           extra=dict(max_position_embeddings=8, rope_theta=500000.0,
                                      rope_scaling=dict(type="dynamic", factor=8.0))),
    "llama_linear": dict(arch="LlamaForCausalLM", model_type="llama", hidden_act="silu", tied=True,
                         quant=dict(quant_method="bitnet", linear_class="bitlinear", quantization_mode="offline"),
                         packed=True, scale="divide", drop=["rope_theta"],
                         extra=dict(rope_parameters=dict(rope_type="linear", factor=2.0))),
}
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def config_json(v):
    c = dict(SHAPE)
    c.update(architectures=[v["arch"]], model_type=v["model_type"], hidden_act=v["hidden_act"],
             tie_word_embeddings=v["tied"], quantization_config=v["quant"])
    c.update(v.get("extra", {}))
    for k in v.get("drop", []):
        c.pop(k)
    return c


def config_text(v):
    """config.json as written: json.dumps, except that a variant may repeat quantization_config as HF1BitLLM's
    file does (an extra first copy that Python's json.load, and so transformers, overrides with the second)."""
    text = json.dumps(config_json(v), indent=2)
    if v.get("duplicate_quant"):
        text = text.replace('{\n', '{\n  "quantization_config": {"modules_to_not_convert": null, "quant_method": "bitnet"},\n', 1)
    return text


def make_state(name, v):
    """A random checkpoint: normal latent weights, norms near 1, an f16-representable embedding of std 1 (so
    logits spread over several units and greedy decoding is far from ties)."""
    from transformers.integrations.bitnet import pack_weights
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    c = config_json(v)
    h, f, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    hd = c.get("head_dim") or h // c["num_attention_heads"]
    q = c["num_attention_heads"] * hd
    kv = c["num_key_value_heads"] * hd
    shapes = dict(q_proj=(q, h), k_proj=(kv, h), v_proj=(kv, h), o_proj=(h, q), gate_proj=(f, h), up_proj=(f, h),
                  down_proj=(h, f))
    attn = dict(q_proj="self_attn", k_proj="self_attn", v_proj="self_attn", o_proj="self_attn")
    sd = {}

    def norm(n):
        return 1.0 + 0.2 * (torch.rand(n, generator=g) - 0.5)

    sd["model.embed_tokens.weight"] = torch.randn(SHAPE["vocab_size"], h, generator=g).half().float()
    if not v["tied"]:
        sd["lm_head.weight"] = torch.randn(SHAPE["vocab_size"], h, generator=g).half().float()
    sd["model.norm.weight"] = norm(h)
    for i in range(layers):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = norm(h)
        sd[p + "post_attention_layernorm.weight"] = norm(h)
        if v["model_type"] == "bitnet":
            sd[p + "self_attn.attn_sub_norm.weight"] = norm(q)
            sd[p + "mlp.ffn_sub_norm.weight"] = norm(f)
        for proj in PROJECTIONS:
            key = p + attn.get(proj, "mlp") + "." + proj + ".weight"
            w = torch.randn(*shapes[proj], generator=g) * 0.05
            if not v["packed"]:
                sd[key] = w
                continue
            mean = w.abs().mean().clamp(min=1e-5)
            ternary = (w / mean).round().clamp(-1, 1).to(torch.int8)
            sd[key] = pack_weights(ternary)
            scale = mean if v["scale"] == "multiply" else 1.0 / mean
            sd[key[: -len("weight")] + "weight_scale"] = scale.reshape(1).float()
    return {k: t.contiguous() for k, t in sd.items()}


def f16_kv_attention():
    """transformers' own sdpa attention with keys and values rounded to f16, as the engine's KV cache holds them:
    the reference for how far the engine is from transformers once that one storage choice is shared."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    def forward(module, query, key, value, attention_mask, **kwargs):
        return sdpa_attention_forward(module, query, key.half().float(), value.half().float(), attention_mask, **kwargs)

    AttentionInterface.register("f16_kv", forward)
    return "f16_kv"


def reference(model_dir):
    import transformers
    from transformers import AutoModelForCausalLM
    f16 = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=f16_kv_attention())
    f16.eval()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    kinds = {type(m).__name__ for m in model.modules()}
    assert kinds & {"BitLinear", "AutoBitLinear"}, f"transformers did not quantize the projections: {kinds}"
    out = {}
    with torch.no_grad():
        for n, prompt in enumerate(PROMPTS):
            ids = torch.tensor([prompt])
            out[f"prompt.{n}"] = ids[0].to(torch.int32)
            out[f"logits.{n}"] = model(ids).logits[0].float().contiguous()
            # The final hidden states (after the model's last norm): what an embedding is pooled from.
            out[f"hidden.{n}"] = model.model(ids).last_hidden_state[0].float().contiguous()
            out[f"hidden_f16kv.{n}"] = f16.model(ids).last_hidden_state[0].float().contiguous()
            out[f"logits_f16kv.{n}"] = f16(ids).logits[0].float().contiguous()
            gen = model.generate(ids, max_new_tokens=GREEDY_TOKENS, min_new_tokens=GREEDY_TOKENS, do_sample=False,
                                 output_logits=True, return_dict_in_generate=True, pad_token_id=0)
            out[f"greedy.{n}"] = gen.sequences[0, len(prompt):].to(torch.int32).contiguous()
            margins = [float(l[0].topk(2).values[0] - l[0].topk(2).values[1]) for l in gen.logits]
            out[f"margin.{n}"] = torch.tensor([min(margins)])
    return out, transformers.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="recompute with transformers and compare with the files")
    ap.add_argument("--only", nargs="*", help="these variants only")
    args = ap.parse_args()
    worst = 0.0
    for name, v in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        d = os.path.join(HERE, name)
        if not args.check:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                f.write(config_text(v))
            save_file(make_state(name, v), os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        ref, version = reference(d)
        if args.check:
            old = load_file(os.path.join(d, "golden.safetensors"))
            for k, t in ref.items():
                if k.startswith("margin"):
                    continue
                diff = (t.float() - old[k].float()).abs().max().item()
                worst = max(worst, diff)
                if diff <= 1e-4:
                    continue
                # Activations are quantized to int8 at run time (and bitnet_latent's weights ternarized with a
                # run-time absmean), with torch's CPU kernels, whose float sums differ in their last bits between
                # CPUs (AVX2 against AVX-512): a value on a rounding boundary moves one code, and the values that
                # depend on it move a little (seen on a Zen 3 host, for files written on a Zen 4: bitnet_latent's
                # logits by up to 0.26 of about 185, its hidden states by 4e-3 of the largest; up to 0.37 in another).
                # So floats may move by 5e-3 of their largest value; token ids (the prompts, the greedy
                # continuations) never.
                if not t.dtype.is_floating_point or diff > 5e-3 * old[k].float().abs().max().item():
                    sys.exit(f"{name}: {k} differs from the committed golden file by {diff}")
            print(f"{name}: matches transformers {version} (max |diff| {worst:.2e})")
        else:
            save_file(ref, os.path.join(d, "golden.safetensors"), metadata={"transformers": version})
            print(f"{name}: wrote golden (transformers {version}); smallest greedy margins "
                  + ", ".join(f"{ref[f'margin.{n}'].item():.3f}" for n in range(len(PROMPTS))))


if __name__ == "__main__":
    main()
