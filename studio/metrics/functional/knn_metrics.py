"""Single-metric entry points of the k-NN family; each is one `knn_metrics` call.

`real` may be features (N, D) or a prepared `RealManifold`, which skips the real x real pass.
To get several of these at once, call `knn_metrics` (one shared distance pass) instead.
"""

from __future__ import annotations

import numpy as np
import torch

from studio.metrics.functional._inputs import FeatureArray
from studio.metrics.functional.manifold import RealManifold, knn_metrics


def precision_recall(
    real: FeatureArray | RealManifold,
    fake: FeatureArray,
    k: int = 3,
    strict: bool = False,
    block_size: int | None = None,
    dtype: str | torch.dtype = "float32",
    protocol: str = "paper",
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), k=3: {"precision", "recall"}.

    precision: share of fakes inside some real ball; recall: share of reals inside some fake ball.
    protocol "paper" (exact distances) or "nvlabs" (NVlabs' float16 computation, `nvlabs_pr`).
    """
    out = knn_metrics(
        real, fake, ("precision", "recall"), k_pr=k, strict=strict, block_size=block_size, dtype=dtype,
        protocol=protocol,
    )  # fmt: skip
    return {"precision": out["precision"], "recall": out["recall"]}


def realism_score(
    real: FeatureArray | RealManifold,
    fake: FeatureArray,
    k: int = 3,
    percentile: float = 50.0,
    block_size: int | None = None,
    dtype: str | torch.dtype = "float32",
    protocol: str = "paper",
) -> np.ndarray:
    """Realism score per fake sample (Kynkäänniemi et al. 2019); (M,) float64.

    max over real j of radius_j / |fake - real_j|, using only the real balls whose radius is at or
    below the given percentile (the paper drops the larger half as outliers). >= 1 means the fake
    lies inside a kept ball; +inf for a fake that coincides with a kept real sample.
    protocol="nvlabs": the official code's max radius_j^2 / (|fake - real_j|^2 + 1e-5) instead.
    """
    out = knn_metrics(
        real, fake, ("realism",), k_pr=k, realism_percentile=percentile, block_size=block_size, dtype=dtype,
        protocol=protocol,
    )  # fmt: skip
    return out["realism"]


def density_coverage(
    real: FeatureArray | RealManifold,
    fake: FeatureArray,
    k: int = 5,
    strict: bool = False,
    block_size: int | None = None,
    dtype: str | torch.dtype = "float32",
) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020), k=5: {"density", "coverage"}.

    density: mean over fakes of (number of real balls containing it) / k; coverage: share of reals
    whose ball contains at least one fake.
    """
    out = knn_metrics(
        real, fake, ("density", "coverage"), k_dc=k, strict=strict, block_size=block_size, dtype=dtype
    )
    return {"density": out["density"], "coverage": out["coverage"]}


def rarity_score(
    real: FeatureArray | RealManifold,
    fake: FeatureArray,
    k: int = 3,
    strict: bool = False,
    block_size: int | None = None,
    dtype: str | torch.dtype = "float32",
) -> dict[str, np.ndarray | int | float]:
    """Rarity score (Han et al. 2022), k=3: the radius of the smallest real ball containing each fake.

    Returns {"scores": (M,) float64 with NaN for fakes outside every real ball, "num_outside": int,
    "mean": mean score over the fakes inside (NaN if none)}.
    """
    out = knn_metrics(real, fake, ("rarity",), k_rarity=k, strict=strict, block_size=block_size, dtype=dtype)
    scores = out["rarity"]
    inside = scores[~np.isnan(scores)]
    mean = float(inside.mean()) if inside.size else float("nan")
    return {"scores": scores, "num_outside": out["rarity_num_outside"], "mean": mean}
