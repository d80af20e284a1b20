"""alpha-precision, beta-recall and authenticity (Alaa et al. 2022, "How Faithful is your Synthetic
Data? Sample-level Metrics for Evaluating and Auditing Generative Models", ICML).

Follows the authors' `compute_alpha_precision` (vanderschaarlab/evaluating-generative-models,
metrics/evaluation.py) evaluated directly in the given feature space: the paper first learns a
one-class (Deep SVDD) embedding; here the embedding is the identity and the real "center" is the mean
real feature, the common practice for pretrained features.
"""

from __future__ import annotations

import numpy as np
import torch

from studio.metrics.functional._inputs import (
    FeatureArray,
    as_feature_pair,
    check_enough_samples,
    resolve_dtype,
)
from studio.metrics.functional.knn import default_block_size, knn_squared_distances, mutual_nearest


def _integrated_score(alphas: np.ndarray, curve: np.ndarray) -> float:
    """1 - 2 * (area between the curve and the diagonal), as a Riemann sum like the reference."""
    return float(1 - 2 * np.sum(np.abs(alphas - curve)) * (alphas[1] - alphas[0]))


def alpha_precision_beta_recall_authenticity(
    real: FeatureArray,
    fake: FeatureArray,
    num_steps: int = 30,
    block_size: int | None = None,
    dtype: str | torch.dtype = "float64",
) -> dict[str, float | np.ndarray]:
    """alpha-precision / beta-recall curves, their integrated scores and authenticity.

    real (N, D), fake (M, D). alphas = betas = linspace(0, 1, num_steps) (reference: 30 steps).
    - alpha-precision(a): share of fakes within the a-quantile of real distances to the real mean.
    - beta-recall(b): share of reals whose nearest fake is closer than the real's nearest other real
      AND lies within the b-quantile (over reals) of those nearest fakes' distances to the fake mean.
    - authenticity: share of fakes farther from their nearest real sample than that real sample is
      from its own nearest other real (the paper's definition; see docs/metrics.md on the
      reference code's indexing).
    Returns {"alphas", "alpha_precision_curve", "beta_recall_curve" (arrays), "delta_precision_alpha",
    "delta_recall_beta", "authenticity" (floats)}.
    """
    real_t, fake_t = as_feature_pair(real, fake)
    check_enough_samples(real_t.shape[0], 1, "real")
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2; got {num_steps}")
    compute_dtype = resolve_dtype(dtype)
    center = real_t.mean(dim=0, dtype=torch.float64)
    real_c = (real_t.to(compute_dtype) - center.to(compute_dtype)).contiguous()
    fake_c = (fake_t.to(compute_dtype) - center.to(compute_dtype)).contiguous()
    block = block_size or default_block_size(real_t.device)
    real_nn_sq = knn_squared_distances(real_c, 1, block)[:, 0]
    real_to_fake_sq, real_to_fake_index, fake_to_real_sq, fake_to_real_index = mutual_nearest(
        real_c, fake_c, block
    )

    def to_numpy(x: torch.Tensor) -> np.ndarray:
        return x.double().cpu().numpy()

    alphas = np.linspace(0, 1, num_steps)
    real_to_center = to_numpy(real_c.double().norm(dim=1))
    fake_to_center = to_numpy(fake_c.double().norm(dim=1))
    radii = np.quantile(real_to_center, alphas)
    alpha_precision = (fake_to_center[None, :] <= radii[:, None]).mean(axis=1)

    fake_center = fake_c.double().mean(dim=0)
    closest_fake_to_fake_center = to_numpy((fake_c.double()[real_to_fake_index] - fake_center).norm(dim=1))
    closest_radii = np.quantile(closest_fake_to_fake_center, alphas)
    real_nn, real_to_fake = np.sqrt(to_numpy(real_nn_sq)), np.sqrt(to_numpy(real_to_fake_sq))
    covered = real_to_fake <= real_nn
    beta_recall = (covered[None, :] & (closest_fake_to_fake_center[None, :] <= closest_radii[:, None])).mean(
        axis=1
    )

    fake_to_real = np.sqrt(to_numpy(fake_to_real_sq))
    authentic = fake_to_real > real_nn[fake_to_real_index.cpu().numpy()]
    return {
        "alphas": alphas,
        "alpha_precision_curve": alpha_precision,
        "beta_recall_curve": beta_recall,
        "delta_precision_alpha": _integrated_score(alphas, alpha_precision),
        "delta_recall_beta": _integrated_score(alphas, beta_recall),
        "authenticity": float(authentic.mean()),
    }
