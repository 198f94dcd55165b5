#!/usr/bin/env python3
"""Golden logits and greedy tokens from Hugging Face transformers for small random-weight ternary models,
one per architecture the engine runs from an HF directory:

  bitnet_packed  BitNetForCausalLM as microsoft/bitnet-b1.58-2B-4T ships it: packed uint8 weights + weight_scale
                 (AutoBitLinear, offline, multiply convention), relu^2 gate, sub-norms, tied embedding.
  bitnet_latent  the same model with latent float weights (AutoBitLinear, online: transformers ternarizes them
                 with absmean at run time), as in microsoft/bitnet-b1.58-2B-4T-bf16.
  llama_packed   LlamaForCausalLM with transformers' default BitLinear (offline, divide convention), SiLU, no
                 sub-norms, untied head: the layout of HF1BitLLM/Llama3-8B-1.58 and Falcon3-*-1.58bit.

    .venv/bin/python tests/golden/hf/make_hf_golden.py            # (re)write the model dirs and golden files
    .venv/bin/python tests/golden/hf/make_hf_golden.py --check    # recompute with transformers, compare

Each model dir holds config.json, model.safetensors (the HF checkpoint) and golden.safetensors: per prompt
`prompt.N` (token ids), `logits.N` (float32 [tokens, vocab], every position, from one forward pass) and
`greedy.N` (32 ids from model.generate(do_sample=False)), plus `margin.N`, the smallest top-1 minus top-2 logit
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
}
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def config_json(v):
    c = dict(SHAPE)
    c.update(architectures=[v["arch"]], model_type=v["model_type"], hidden_act=v["hidden_act"],
             tie_word_embeddings=v["tied"], quantization_config=v["quant"])
    return c


def make_state(name, v):
    """A random checkpoint: normal latent weights, norms near 1, an f16-representable embedding of std 1 (so
    logits spread over several units and greedy decoding is far from ties)."""
    from transformers.integrations.bitnet import pack_weights
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    h, f, layers = SHAPE["hidden_size"], SHAPE["intermediate_size"], SHAPE["num_hidden_layers"]
    hd = h // SHAPE["num_attention_heads"]
    kv = SHAPE["num_key_value_heads"] * hd
    shapes = dict(q_proj=(h, h), k_proj=(kv, h), v_proj=(kv, h), o_proj=(h, h), gate_proj=(f, h), up_proj=(f, h),
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
            sd[p + "self_attn.attn_sub_norm.weight"] = norm(h)
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


def reference(model_dir):
    import transformers
    from transformers import AutoModelForCausalLM
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
            gen = model.generate(ids, max_new_tokens=GREEDY_TOKENS, min_new_tokens=GREEDY_TOKENS, do_sample=False,
                                 output_logits=True, return_dict_in_generate=True, pad_token_id=0)
            out[f"greedy.{n}"] = gen.sequences[0, len(prompt):].to(torch.int32).contiguous()
            margins = [float(l[0].topk(2).values[0] - l[0].topk(2).values[1]) for l in gen.logits]
            out[f"margin.{n}"] = torch.tensor([min(margins)])
    return out, transformers.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="recompute with transformers and compare with the files")
    args = ap.parse_args()
    worst = 0.0
    for name, v in VARIANTS.items():
        d = os.path.join(HERE, name)
        if not args.check:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(config_json(v), f, indent=2)
            save_file(make_state(name, v), os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        ref, version = reference(d)
        if args.check:
            old = load_file(os.path.join(d, "golden.safetensors"))
            for k, t in ref.items():
                if k.startswith("margin"):
                    continue
                diff = (t.float() - old[k].float()).abs().max().item()
                worst = max(worst, diff)
                if diff > 1e-4:
                    sys.exit(f"{name}: {k} differs from the committed golden file by {diff}")
            print(f"{name}: matches transformers {version} (max |diff| {worst:.2e})")
        else:
            save_file(ref, os.path.join(d, "golden.safetensors"), metadata={"transformers": version})
            print(f"{name}: wrote golden (transformers {version}); smallest greedy margins "
                  + ", ".join(f"{ref[f'margin.{n}'].item():.3f}" for n in range(len(PROMPTS))))


if __name__ == "__main__":
    main()
