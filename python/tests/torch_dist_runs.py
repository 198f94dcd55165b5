"""The training runs of test_torch_distributed.py, in a process of their own (pytest's output capture and
torch.multiprocessing's spawned children do not mix: a child sharing the captured descriptors could end in
std::terminate at exit). Writes OUT/{single,accumulate,ddp,fsdp}.pt.

    python torch_dist_runs.py OUT
"""
import gc
import pathlib
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bitnet.torch import BitNetConfig, BitNetForCausalLM

CONFIG = dict(vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2)
STEPS, BATCH, SEQ = 10, 8, 33


def data():
    """Counting sequences from random starts: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, 200, (STEPS * BATCH, 1), generator=g)
    return start + torch.arange(SEQ)


def train(rank, world, init, mode, out, accumulate=1):
    """One process's share: rows [rank * b, (rank + 1) * b) of every batch of BATCH rows (b = BATCH / world), in
    `accumulate` micro-batches."""
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model = BitNetForCausalLM(BitNetConfig(**CONFIG), seed=1)
    wrapped = model
    if mode == "ddp":
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
    elif mode == "fsdp":
        from torch.distributed.fsdp import fully_shard
        for layer in model.model.layers:
            fully_shard(layer)
        wrapped = fully_shard(model)
    opt = torch.optim.AdamW(wrapped.parameters(), lr=3e-3)
    rows, b = data(), BATCH // world
    losses = []
    for step in range(STEPS):
        batch = rows[step * BATCH:(step + 1) * BATCH][rank * b:(rank + 1) * b]
        opt.zero_grad()
        mean = torch.zeros(())
        for micro in batch.chunk(accumulate):
            loss = wrapped(micro, labels=micro).loss / accumulate
            loss.backward()
            mean += loss.detach()
        opt.step()
        if world > 1:
            dist.all_reduce(mean)
            mean /= world
        losses.append(mean.item())
    if mode == "fsdp":
        from torch.distributed.tensor import DTensor
        state = {k: (v.full_tensor() if isinstance(v, DTensor) else v) for k, v in model.state_dict().items()}
    else:
        state = model.state_dict()
    if rank == 0:
        torch.save({"losses": losses, "state": state}, out)
    if world > 1:
        # The DDP / FSDP wrappers hold the process group: released first, so that the group (and gloo's threads)
        # ends here and not in the interpreter's teardown, where a still-joinable thread aborts the process.
        del wrapped, model, opt, state
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()



def main(out):
    d = pathlib.Path(out)
    train(0, 1, None, "single", str(d / "single.pt"))
    train(0, 1, None, "accumulate", str(d / "accumulate.pt"), accumulate=2)
    for mode in ("ddp", "fsdp"):
        mp.spawn(train, args=(2, f"file://{d}/init-{mode}", mode, str(d / f"{mode}.pt")), nprocs=2, join=True)


if __name__ == "__main__":
    main(sys.argv[1])
