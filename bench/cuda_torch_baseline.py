"""In-run baselines for bench/cuda_bench.sh on the same GPU: bf16 torch.matmul at the ternary kernels' shapes
(graph replay over rotating weight copies larger than L2, as the kernel benchmark does), and Hugging Face
BitNetForCausalLM in bf16 with random weights at the 2B4T shape, decode tokens/s at batch 1, eager and
torch.compile (static cache). Prints a markdown table and JSON lines; says why when torch/CUDA is missing."""
import json
import sys
import time


def main() -> int:
    try:
        import torch
    except ImportError as e:
        print(f"torch baseline skipped: torch is not installed ({e})")
        return 0
    if not torch.cuda.is_available():
        print("torch baseline skipped: torch sees no CUDA device")
        return 0
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    print(f"torch {torch.__version__} on {props.name}\n")
    print("| baseline | shape | tokens | us/call | weight GB/s | TFLOP/s |\n| --- | --- | ---: | ---: | ---: | ---: |")
    shapes = [("qkv", 3840, 2560), ("o", 2560, 2560), ("gate|up", 13824, 2560), ("down", 2560, 6912), ("square", 16384, 16384)]
    for name, rows, cols in shapes:
        wbytes = rows * cols * 2
        copies = max(2, -(-5 * l2 // 2 // wbytes))
        ws = [torch.randn(rows, cols, device=dev, dtype=torch.bfloat16) for _ in range(copies)]
        for tokens in (1, 8, 512):
            if tokens == 512 and rows == 16384:
                continue
            x = torch.randn(tokens, cols, device=dev, dtype=torch.bfloat16)
            calls = copies * max(1, 100 // copies)
            s = torch.cuda.Stream()
            with torch.cuda.stream(s):
                for w in ws:
                    torch.matmul(x, w.t())  # warm-up (cuBLAS heuristics, workspace) before capture
            torch.cuda.synchronize()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for i in range(calls):
                    torch.matmul(x, ws[i % copies].t())
            g.replay()
            torch.cuda.synchronize()
            samples = []
            for _ in range(5):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                g.replay()
                b.record()
                b.synchronize()
                samples.append(a.elapsed_time(b) * 1e-3 / calls)
            t = sorted(samples)[len(samples) // 2]
            gbs = wbytes / t / 1e9
            tflops = 2 * rows * cols * tokens / t / 1e12
            print(f"| torch.matmul bf16 | {name} {rows}x{cols} | {tokens} | {t * 1e6:.2f} | {gbs:.0f} | {tflops:.1f} |")
            print("JSON " + json.dumps({"test": "torch_matmul_bf16", "shape": name, "rows": rows, "cols": cols,
                                        "tokens": tokens, "us": t * 1e6, "gb_s": gbs, "tflops": tflops}))
        del ws
        torch.cuda.empty_cache()
    print()
    return hf_decode(torch, dev)


def hf_decode(torch, dev) -> int:
    try:
        from transformers import BitNetConfig, BitNetForCausalLM
    except ImportError as e:
        print(f"HF baseline skipped: transformers has no BitNetForCausalLM ({e})")
        return 0
    # microsoft/bitnet-b1.58-2B-4T's shape; random bf16 weights (plain linears: no ternary quantization).
    cfg = BitNetConfig(vocab_size=128256, hidden_size=2560, intermediate_size=6912, num_hidden_layers=30,
                       num_attention_heads=20, num_key_value_heads=5, max_position_embeddings=4096,
                       rms_norm_eps=1e-5, rope_theta=500000.0, hidden_act="relu2", tie_word_embeddings=True)
    torch.manual_seed(0)
    with torch.device(dev):
        model = BitNetForCausalLM(cfg).to(torch.bfloat16).eval()
    prompt = torch.randint(0, cfg.vocab_size, (1, 16), device=dev)
    new = int(sys.argv[1]) if len(sys.argv) > 1 else 128

    def tokens_per_s(**kw) -> float:
        with torch.no_grad():
            model.generate(prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False, **kw)  # warm-up / compile
            model.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False, **kw)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False, **kw)
            torch.cuda.synchronize()
            return new / (time.perf_counter() - t0)

    print("| baseline | batch | new tokens | tokens/s |\n| --- | ---: | ---: | ---: |")
    for label, kw in (("HF BitNetForCausalLM bf16 eager", {}),
                      ("HF BitNetForCausalLM bf16 torch.compile (static cache)", {"cache_implementation": "static"})):
        try:
            if "compile" in label:
                model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
            tps = tokens_per_s(**kw)
            print(f"| {label} | 1 | {new} | {tps:.1f} |")
            print("JSON " + json.dumps({"test": label, "batch": 1, "new_tokens": new, "tokens_per_s": tps}))
        except Exception as e:  # report and go on: the other rows are still worth having
            print(f"| {label} | 1 | {new} | failed: {type(e).__name__}: {str(e)[:200]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
