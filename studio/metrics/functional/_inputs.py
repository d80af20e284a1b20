"""Input checks shared by every functional metric: one clear error per kind of bad input."""

from __future__ import annotations

import numpy as np
import torch

FeatureArray = torch.Tensor | np.ndarray


def as_features(x: FeatureArray, name: str) -> torch.Tensor:
    """Return `x` as a floating (N, D) tensor on its own device, after validating it.

    Numpy arrays are wrapped without copying; integer inputs become float32.
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy.ndarray of shape (N, D); got {type(x).__name__}"
        )
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, D); got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(x.shape)}); need at least one sample with at least one feature"
        )
    if not x.is_floating_point():
        x = x.float()
    # One reduction is NaN/Inf iff some entry is (or the sum overflows); count only then.
    bad = 0 if torch.isfinite(x.sum()) else int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(
            f"{name} contains {bad} NaN or Inf values; check the feature extractor (fp16 overflow, "
            "broken images or a diverged generator)"
        )
    return x


def as_feature_pair(real: FeatureArray, fake: FeatureArray) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate both sets and check that they share the feature dimension; fake moves to real's device."""
    real_t = as_features(real, "real")
    fake_t = as_features(fake, "fake")
    if real_t.shape[1] != fake_t.shape[1]:
        raise ValueError(
            f"real and fake features have different dimensions ({real_t.shape[1]} vs {fake_t.shape[1]}); "
            "extract both sets with the same backbone and layer"
        )
    return real_t, fake_t.to(real_t.device)


def check_enough_samples(n: int, k: int, name: str) -> None:
    """A k-NN radius excludes the sample itself, so a set needs more than k samples."""
    if k < 1:
        raise ValueError(f"k must be a positive integer; got k={k}")
    if n <= k:
        raise ValueError(
            f"{name} has {n} samples but the k={k} nearest-neighbour radius needs at least {k + 1}; "
            "use more samples or a smaller k"
        )


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """ "float32" / "float64" (config-friendly strings) or a torch floating dtype -> torch.dtype."""
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype such as 'float32' or 'float64'; got {dtype!r}")
    return resolved


_CENTER_CHUNK_ROWS = 4096


def centered(x: torch.Tensor, center: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x - center (N, D) in `dtype`, subtracted in float64 before rounding (a large common offset would
    otherwise cost its own rounding error), in row chunks so no float64 copy of x is held."""
    out = torch.empty(x.shape, dtype=dtype, device=x.device)
    center = center.to(device=x.device, dtype=torch.float64)
    for start in range(0, x.shape[0], _CENTER_CHUNK_ROWS):
        rows = slice(start, start + _CENTER_CHUNK_ROWS)
        out[rows] = x[rows].double() - center
    return out
