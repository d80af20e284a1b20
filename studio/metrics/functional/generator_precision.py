"""Float32 generators for the metrics that measure the generator itself (PPL, equivariance)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from ops.environment import fp32_precision


@contextlib.contextmanager
def float32_layers(G: nn.Module) -> Iterator[None]:
    """Inside the block, every submodule of G with a true `use_fp16` flag (StyleGAN's fp16 layers on
    CUDA) computes in float32; the flags are restored afterwards, whatever happens."""
    layers = [module for module in G.modules() if getattr(module, "use_fp16", False) is True]
    for module in layers:
        module.use_fp16 = False
    try:
        yield
    finally:
        for module in layers:
            module.use_fp16 = True


@contextlib.contextmanager
def float32_generator(G: nn.Module) -> Iterator[None]:
    """G in float32 throughout, as NVlabs' metrics run it (force_fp32, TF32 off): its fp16 layers in
    float32 and CUDA convolutions and matmuls in IEEE float32; the caller's settings restored after.
    fp16's and TF32's 1e-3 relative errors would swamp what PPL and the equivariance metrics measure."""
    with fp32_precision(), float32_layers(G):
        yield
