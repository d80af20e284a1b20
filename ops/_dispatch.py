"""Choosing between the compiled CUDA kernel and the plain-PyTorch reference of an op.

Seam between the public op functions (ops/bias_act.py, ops/upfirdn2d.py, ops/filtered_lrelu.py) and the
CUDA side. A public op calls `cuda_impl(op_name, impl, x)`; a returned callable takes exactly the op's
own keyword arguments (minus `impl`), otherwise the op runs its reference path.
"""

from collections.abc import Callable

import torch

IMPLS = ("auto", "cuda", "ref")


def cuda_impl(op: str, impl: str, x: torch.Tensor) -> Callable | None:
    """The CUDA implementation of `op` to use for `x`, or None for the reference path.

    impl: "ref" always uses the reference; "auto" uses CUDA for GPU tensors when the kernel built and
    passed its self-check; "cuda" demands the kernel and raises if it cannot be used.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "ref":
        return None
    if impl == "cuda" and not x.is_cuda:
        raise ValueError(f"{op}: impl='cuda' needs a CUDA tensor, got one on {x.device}")
    if impl == "cuda":
        raise RuntimeError(f"{op}: the CUDA kernel is not available in this build")
    return None
