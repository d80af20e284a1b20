"""Multi-process training without DistributedDataParallel.

A GAN step runs several phases that each touch one network (G or D) while the other is frozen, and the
R1 / path-length regularizers differentiate twice (autograd.grad with create_graph=True). PyTorch's DDP
reducer expects one backward over one fixed parameter set per forward; it mis-handles both (unused
parameter errors, hooks firing during double backward). So studio does what NVlabs' loop does:
processes start from identical weights, and before every optimizer step the gradients of the network
being trained are averaged over all ranks in one flattened all-reduce. Each rank therefore applies the
same update and the weights stay bitwise identical (checked at every checkpoint).
"""

import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from studio.runtime import world_size


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """Element-wise mean of `x` over all ranks (x itself in a single process)."""
    if world_size() == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / world_size()


def average_gradients_(module: nn.Module) -> None:
    """Replace each trainable parameter's .grad by its mean over ranks (one flattened all-reduce).

    A parameter without a gradient on this rank contributes zeros, so every rank reduces the same layout.
    """
    if world_size() == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    average_tensors_([p.grad for p in params])


def average_tensors_(tensors: list[torch.Tensor]) -> None:
    """In-place mean over ranks of floating tensors (e.g. running averages a network tracks)."""
    if world_size() == 1 or not tensors:
        return
    flat = torch.cat([t.flatten() for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size()
    for t, v in zip(tensors, flat.split([t.numel() for t in tensors]), strict=True):
        t.copy_(v.view_as(t))


class GANDDPStrategy(DDPStrategy):
    """Lightning's DDP process launch and setup, without wrapping the module in DistributedDataParallel.

    Weights are broadcast from rank 0 once at setup; the LightningModule averages gradients itself.
    """

    strategy_name = "gan_ddp"

    def configure_ddp(self) -> None:
        _sync_module_states(self.model)
