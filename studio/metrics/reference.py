"""The real side of an evaluation, prepared once and reused by every evaluation of a run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import torch

from studio.metrics import functional as F

METRICS_DEVICE_CHOICES = "'auto', 'cpu' or a torch device such as 'cuda:0'"


def resolve_metrics_device(setting: str | None, device: torch.device) -> torch.device:
    """Where metrics are computed: None or "auto" = `device`, the one that generated and embedded the
    images; else the device named ("cpu" keeps the GPU's memory for training)."""
    if setting is None or setting == "auto":
        return device
    try:
        return torch.device(setting)
    except RuntimeError:
        raise ValueError(f"metrics_device must be {METRICS_DEVICE_CHOICES}; got {setting!r}") from None


class RealReference:
    """Real features {"pool": [N, D], "logits": [N, C], ...} with what metrics derive from them, each
    computed on first use and kept: FID statistics (per ddof) and k-NN manifolds (per k_max, block size,
    dtype and TF32 setting). Training evaluates against the same real set at every tick, so only the
    fake side is computed again. With `device`, the features move there and every metric computed
    against them runs there (fake features follow, `compute_metrics`); on a GPU the k-NN passes take
    seconds at 50k where the CPU takes minutes."""

    def __init__(self, features: Mapping[str, torch.Tensor], device: torch.device | None = None) -> None:
        self.features = {name: torch.as_tensor(value, device=device) for name, value in features.items()}
        self._fid_stats: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._manifolds: dict[tuple, F.RealManifold] = {}

    def __getitem__(self, feature: str) -> torch.Tensor:
        return self.features[feature]

    def __contains__(self, feature: object) -> bool:
        return feature in self.features

    def __iter__(self) -> Iterator[str]:
        return iter(self.features)

    @property
    def device(self) -> torch.device:
        return next(iter(self.features.values())).device

    @property
    def count(self) -> int:
        return int(next(iter(self.features.values())).shape[0])

    def fid_stats(self, ddof: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean (D,), covariance (D, D)) of the "pool" features, float64."""
        if ddof not in self._fid_stats:
            self._fid_stats[ddof] = F.feature_stats(self.features["pool"], ddof)
        return self._fid_stats[ddof]

    def manifold(
        self, k_max: int, block_size: int | None, dtype: str | torch.dtype, allow_tf32: bool
    ) -> F.RealManifold:
        """The k-NN radii (k = 1..k_max) of the "pool" features."""
        key = (k_max, block_size, str(dtype), allow_tf32)
        if key not in self._manifolds:
            self._manifolds[key] = F.RealManifold(self.features["pool"], k_max, block_size, dtype, allow_tf32)
        return self._manifolds[key]
