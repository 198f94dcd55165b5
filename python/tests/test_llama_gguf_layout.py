"""A "llama" GGUF holds attn_q / attn_k rows in llama.cpp's interleaved-RoPE order (convert_hf_to_gguf's
LlamaModel.permute), so that llama.cpp and this engine read the same file the same way. Checked against
transformers' unpacking and the permutation written out with NumPy, independently of the C++ code."""
import json
import pathlib

import numpy as np
import pytest

from conftest import ROOT, requires_cli, run_cli

GOLDEN = ROOT / "tests" / "golden" / "hf" / "llama_packed"


@requires_cli
def test_q_k_rows_are_permuted_as_llama_cpp_writes_them(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is the oracle of the HF packing (scripts/setup.sh installs it)")
    bitnet_int = pytest.importorskip("transformers.integrations.bitnet")
    gguf = pytest.importorskip("gguf")
    from safetensors.torch import load_file

    cfg = json.loads((GOLDEN / "config.json").read_text())
    out = tmp_path / "llama.gguf"
    run_cli("convert", str(GOLDEN), "-o", str(out), "-t", "tq2_0")
    reader = gguf.GGUFReader(str(out))
    tensors = {t.name: t for t in reader.tensors}
    hf = load_file(str(GOLDEN / "model.safetensors"))
    heads = {"q_proj": cfg["num_attention_heads"], "k_proj": cfg["num_key_value_heads"]}
    for proj, gguf_name in (("q_proj", "blk.0.attn_q.weight"), ("k_proj", "blk.0.attn_k.weight"),
                            ("v_proj", "blk.0.attn_v.weight")):
        w = bitnet_int.unpack_weights(hf[f"model.layers.0.self_attn.{proj}.weight"], dtype=torch.float32).numpy()
        rows, cols = w.shape
        if proj in heads:  # LlamaModel.permute(weights, n_head, n_head_kv)
            n = heads[proj]
            w = w.reshape(n, 2, rows // n // 2, cols).swapaxes(1, 2).reshape(rows, cols)
        t = tensors[gguf_name]
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(rows, cols)
        np.testing.assert_array_equal(np.sign(got), np.sign(w), err_msg=gguf_name)
    # And back: GGUF -> safetensors restores Hugging Face's order byte for byte.
    back = tmp_path / "hf" / "model.safetensors"
    back.parent.mkdir()
    run_cli("convert", str(out), "-o", str(back))
    again = load_file(str(back))
    for proj in ("q_proj", "k_proj"):
        name = f"model.layers.1.self_attn.{proj}.weight"
        assert torch.equal(again[name], hf[name]), name
