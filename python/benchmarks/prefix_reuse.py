"""Time to first token of a repeated long prompt in bitnet.Llama, with and without prefix reuse.

llama-cpp-python keeps the tokens of the KV cache (input_ids[:n_tokens]) and evaluates only the part of a new prompt
past their longest common prefix; bitnet.Llama does the same. This measures a completion of max_tokens=1 (prefill +
one sampled token) of the same ~N-token prompt:
  cold: llm.reset() before each call (the whole prompt is evaluated, as before prefix reuse),
  warm: the prompt was the previous call's prompt (only its last token is evaluated),
  turn: the previous prompt plus a short new user turn (the new tokens are evaluated).
and prints the median of --repeats runs (and checks that warm and cold give the same text).

  .venv/bin/python python/benchmarks/prefix_reuse.py MODEL.gguf [--tokens 1600] [--repeats 5] [--threads N]

MODEL: e.g. a random model from `bitnet make-model --arch tiny --vocab VOCAB.gguf tiny.gguf` (or --arch
bitnet-b1.58-2b4t for the real shape).
"""
import argparse
import statistics
import time

import bitnet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--tokens", type=int, default=1600, help="prompt length in tokens (about)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n-ctx", type=int, default=2048)
    args = ap.parse_args()

    llm = bitnet.Llama(args.model, n_ctx=args.n_ctx, n_threads=args.threads, verbose=False)
    words = "the quick brown fox jumps over the lazy dog and then runs into the forest to find the river".split()
    prompt, i = "", 0
    while len(llm.tokenize(prompt.encode())) < args.tokens:
        prompt += " " + " ".join(words[k % len(words)] for k in range(i, i + 50))
        i += 50
    ids = llm.tokenize(prompt.encode())
    while len(ids) > args.tokens:  # trim to the length asked for
        prompt = prompt[: prompt.rfind(" ")]
        ids = llm.tokenize(prompt.encode())
    turn = prompt + " and what happened next?"

    def timed(p: str) -> tuple:
        t0 = time.perf_counter()
        out = llm(p, max_tokens=1, temperature=0)
        return time.perf_counter() - t0, out["choices"][0]["text"]

    cold, warm, turns, texts = [], [], [], set()
    timed(prompt)  # warm-up (page in the weights)
    for _ in range(args.repeats):
        llm.reset()
        seconds, text = timed(prompt)
        cold.append(seconds)
        texts.add(text)
        seconds, text = timed(prompt)  # the same prompt again: all but its last token reused
        warm.append(seconds)
        texts.add(text)
        llm.reset()
        timed(prompt)
        seconds, _ = timed(turn)  # the previous prompt plus a new turn
        turns.append(seconds)
    assert len(texts) == 1, f"warm and cold runs gave different text: {texts}"
    n_turn = len(llm.tokenize(turn.encode()))
    print(f"model {args.model}: {llm._engine.architecture}, {llm._engine.n_params / 1e6:.1f} M params, "
          f"{llm._engine.n_threads} threads")
    print(f"prompt {len(ids)} tokens; time to first token (median of {args.repeats}):")
    print(f"  cold (reset, whole prompt):     {statistics.median(cold) * 1e3:9.2f} ms")
    print(f"  warm (same prompt again):       {statistics.median(warm) * 1e3:9.2f} ms"
          f"   ({statistics.median(cold) / statistics.median(warm):.1f}x)")
    print(f"  new turn (+{n_turn - len(ids)} tokens):           {statistics.median(turns) * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()
