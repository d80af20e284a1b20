"""Choosing between the compiled CUDA kernel and the plain-PyTorch reference of an op.

Seam between the public op functions (ops/bias_act.py, ops/upfirdn2d.py, ops/filtered_lrelu.py) and the
CUDA side. A public op calls `cuda_impl(op_name, impl, x)`; a returned callable takes exactly the op's
own keyword arguments (minus `impl`), otherwise the op runs its reference path.

impl="auto" uses a kernel only after it built and, per (op, dtype), agreed with the reference on a tiny
input (forward and gradient) the first time it was chosen in this process. A failed build or self-check
warns once and the process keeps using the reference for that op (and dtype).
"""

import importlib
import warnings
from collections.abc import Callable

import torch

from ops import _build
from ops._self_check import self_check

IMPLS = ("auto", "cuda", "ref")
OPS = _build.EXTENSIONS
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

_kernels: dict[str, Callable | _build.BuildError] = {}  # op -> kernel callable or why it is unavailable
_checked: dict[tuple[str, torch.dtype], bool] = {}  # (op, dtype) -> self-check passed
_warned: set[tuple[str, str]] = set()


def cuda_impl(op: str, impl: str, x: torch.Tensor) -> Callable | None:
    """The CUDA implementation of `op` to use for `x`, or None for the reference path.

    impl: "ref" always uses the reference; "auto" uses CUDA for GPU tensors when the kernel built and
    passed its self-check; "cuda" demands the kernel and raises if it cannot be used.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; known: {OPS}")
    if impl == "ref":
        return None
    if not _on_gpu(x):
        if impl == "cuda":
            raise ValueError(f"{op}: impl='cuda' needs a CUDA tensor, got one on {x.device}")
        return None
    if x.dtype not in KERNEL_DTYPES:
        if impl == "cuda":
            raise ValueError(f"{op}: the CUDA kernel supports {KERNEL_DTYPES}, got {x.dtype}; use impl='ref'")
        return None
    kernel = load_kernel(op)
    if isinstance(kernel, _build.BuildError):
        if impl == "cuda":
            raise RuntimeError(f"{op}: impl='cuda' but the CUDA kernel is unavailable.\n{kernel}")
        warn_once(op, "build", f"ops.{op}: the CUDA kernel is unavailable; using the reference.\n{kernel}")
        return None
    if impl == "cuda" or checked(op, x.dtype, x.device, kernel):
        return kernel
    return None


def _on_gpu(x: torch.Tensor) -> bool:
    return x.is_cuda


def _load(op: str) -> Callable:
    """Build the extension of `op` and return its Python wrapper (ops/_cuda_<op>.py). Raises BuildError."""
    _build.build(op)
    return getattr(importlib.import_module(f"ops._cuda_{op}"), op)


def load_kernel(op: str) -> Callable | _build.BuildError:
    """The kernel wrapper of `op`, or the BuildError that made it unavailable (remembered per process)."""
    if op not in _kernels:
        try:
            _kernels[op] = _load(op)
        except _build.BuildError as err:
            _kernels[op] = err
    return _kernels[op]


def reference(op: str) -> Callable:
    """The plain-PyTorch implementation of `op` (ops.<op>_ref)."""
    import ops

    return getattr(ops, f"{op}_ref")


def checked(op: str, dtype: torch.dtype, device: torch.device, kernel: Callable) -> bool:
    """Whether `kernel` passed the self-check for (op, dtype); runs it on `device` the first time."""
    key = (op, dtype)
    if key not in _checked:
        problem = self_check(op, kernel, reference(op), device, dtype)
        _checked[key] = problem is None
        if problem is not None:
            warn_once(
                op,
                str(dtype),
                f"ops.{op}: the CUDA kernel disagrees with the reference for {dtype} ({problem}); using the "
                "reference for this op and dtype. Please report this with the output of `python -m ops`.",
            )
    return _checked[key]


def warn_once(op: str, kind: str, message: str) -> None:
    """A RuntimeWarning the first time (op, kind) goes wrong in this process; later ones are silent."""
    if (op, kind) not in _warned:
        _warned.add((op, kind))
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def reset() -> None:
    """Forget loaded kernels, self-check results and issued warnings (tests; after fixing a toolchain)."""
    _kernels.clear()
    _checked.clear()
    _warned.clear()
