"""Process state a run saves and checks: the rank within a distributed job and the global RNG states.

Plain torch.distributed (no Lightning), so checkpoint writers and readers at every layer can use it.
"""

import os
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a SLURM allocation)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def world_size() -> int:
    """Number of processes when torch.distributed is initialised, else 1."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Rank of this process when torch.distributed is initialised, else 0."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def assert_ranks_in_sync(module: nn.Module) -> None:
    """Raise unless this rank's floating parameters and buffers are bitwise equal to rank 0's (one
    broadcast of the flattened weights; called at every checkpoint)."""
    if world_size() == 1:
        return
    tensors = [
        t.detach().flatten() for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()
    ]
    mine = torch.cat([t.float() for t in tensors])
    reference = mine.clone()
    dist.broadcast(reference, src=0)
    if not torch.equal(mine, reference):
        raise RuntimeError(
            f"Rank {rank()} holds different weights than rank 0: distributed training went out of sync. "
            "Please report this with your config."
        )


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states of torch (CPU and this process's CUDA device), numpy and python, as
    tensors/primitives."""
    # The legacy global numpy RNG is what user code and libraries draw from, so it is what must be saved.
    kind, keys, pos, has_gauss, cached_gauss = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        # Only this process's device: a resume may see other GPUs (one per task under SLURM, fewer ones).
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of capture_rng_state."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(_own_cuda_state(state["cuda"]))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gauss"])
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _own_cuda_state(states: list[torch.Tensor]) -> torch.Tensor:
    """This process's CUDA RNG state among those saved: the one entry, or (checkpoints that saved every
    visible device) the current device's, else the first."""
    device = torch.cuda.current_device()
    return states[device] if len(states) > 1 and device < len(states) else states[0]


def shard(count: int, unit: int = 1) -> range:
    """This rank's contiguous share of `count` items, in whole units of `unit` items (rank r of W gets
    units [U*r//W, U*(r+1)//W) of the U = ceil(count / unit)), so that concatenating the shards in rank
    order gives the one-process order, and with unit = the batch size every item is processed in the
    same batch as in one process (the same float results, bit for bit)."""
    units = -(-count // unit)
    size, index = world_size(), rank()
    return range(min(count, units * index // size * unit), min(count, units * (index + 1) // size * unit))


def gather_rows(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """[n_r, ...] of every rank concatenated in rank order, on every rank (on the CPU). The exchange
    happens on `device` (the collective backend's device: CPU for gloo, the GPU for NCCL)."""
    if world_size() == 1:
        return x
    count = torch.tensor([x.shape[0]], device=device)
    counts = [torch.zeros_like(count) for _ in range(world_size())]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    padded = torch.zeros((max(sizes), *x.shape[1:]), dtype=x.dtype, device=device)
    padded[: x.shape[0]] = x.to(device)
    gathered = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(gathered, padded)
    return torch.cat([part[:n] for part, n in zip(gathered, sizes, strict=True)]).cpu()


def gather_computed(
    compute: Callable[[], dict[str, torch.Tensor]], device: torch.device
) -> dict[str, torch.Tensor]:
    """Run this rank's `compute` ({name: [n_r, ...]}), then gather every output in rank order
    (gather_rows). Collective: if `compute` raised on any rank, every rank raises before any gather
    (this rank's own error, or a RuntimeError saying another process failed), so no rank is left
    waiting in a collective the others never reach."""
    error: Exception | None = None
    try:
        local = compute()
    except Exception as err:  # re-raised below, after every rank has learnt of it
        error, local = err, {}
    if world_size() > 1:
        failed = torch.tensor([int(error is not None)], device=device)
        dist.all_reduce(failed)
        if error is None and int(failed) > 0:
            raise RuntimeError(f"the evaluation failed on {int(failed)} other process(es); see their log")
    if error is not None:
        raise error
    return {name: gather_rows(value, device) for name, value in local.items()}
