"""Process-wide settings every layer of studio shares: the cache folder and float32 precision on CUDA.

They live in ops, the bottom layer, so that ops stays self-contained and models and studio use the very
same rules instead of copies.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def cache_dir(*parts: str) -> Path:
    """`$STUDIO_CACHE/<parts>`, default `~/.cache/studio/<parts>`: weights, feature caches, CUDA builds."""
    base = os.environ.get("STUDIO_CACHE") or Path.home() / ".cache" / "studio"
    return Path(base).expanduser().joinpath(*parts)


def _precision_flags(allow_tf32: bool) -> list[tuple[object, str, object]]:
    """(settings object, attribute, value) for CUDA matmuls and cuDNN convolutions. torch >= 2.9 has the
    `fp32_precision` settings and deprecates the older `allow_tf32` flags, which earlier versions use."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(getattr(conv, "conv", None), "fp32_precision"):
        value = "tf32" if allow_tf32 else "ieee"
        return [(matmul, "fp32_precision", value), (conv.conv, "fp32_precision", value)]
    return [(matmul, "allow_tf32", allow_tf32), (conv, "allow_tf32", allow_tf32)]


@contextmanager
def fp32_precision(allow_tf32: bool = False) -> Iterator[None]:
    """Inside the block CUDA float32 matmuls and convolutions run in IEEE float32 (default) or, with
    `allow_tf32`, in TF32; the caller's settings are restored afterwards. Metrics, feature extraction
    and the kernels' self-checks need true float32: TF32's 10-bit mantissa moves distances and features
    by about 1e-3 relative."""
    flags = _precision_flags(allow_tf32)
    saved = [getattr(owner, name) for owner, name, _ in flags]
    try:
        for owner, name, value in flags:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), previous in zip(flags, saved, strict=True):
            setattr(owner, name, previous)
