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

from ops.environment import fp32_precision
from studio.metrics.functional._inputs import (
    FeatureArray,
    as_feature_pair,
    centered,
    check_enough_samples,
    resolve_dtype,
)
from studio.metrics.functional.knn import Augmented, default_block_size
from studio.metrics.functional.manifold import cross_neighbour_lists, neighbour_list

AUTHENTICITY_PROTOCOLS = ("paper", "authors")


def _integrated_score(alphas: np.ndarray, curve: np.ndarray) -> float:
    """1 - 2 * (area between the curve and the diagonal), as a Riemann sum like the reference."""
    return float(1 - 2 * np.sum(np.abs(alphas - curve)) * (alphas[1] - alphas[0]))


def alpha_precision_beta_recall_authenticity(
    real: FeatureArray,
    fake: FeatureArray,
    num_steps: int = 30,
    block_size: int | None = None,
    dtype: str | torch.dtype = "float64",
    protocol: str = "paper",
) -> dict[str, float | np.ndarray]:
    """alpha-precision / beta-recall curves, their integrated scores and authenticity.

    real (N, D), fake (M, D). alphas = betas = linspace(0, 1, num_steps) (reference: 30 steps).
    - alpha-precision(a): share of fakes within the a-quantile of real distances to the real mean.
    - beta-recall(b): share of reals whose nearest fake is closer than the real's nearest other real
      AND lies within the b-quantile (over reals) of those nearest fakes' distances to the fake mean.
    - authenticity, `protocol="paper"`: share of fakes farther from their nearest real sample than
      that real sample is from its own nearest other real (the paper's definition).
      `protocol="authors"`: as the authors' code computes it, averaged over reals: share of reals i
      with real_nn[j] < d(real_i, fake_j), j = i's nearest fake used as a real index (needs M <= N).
    Nearest neighbours and their distances are exact (`exact.NeighbourList`): equidistant candidates are
    compared with exact distances, the lowest index winning a tie.
    Returns {"alphas", "alpha_precision_curve", "beta_recall_curve" (arrays), "delta_precision_alpha",
    "delta_recall_beta", "authenticity" (floats)}.
    """
    real_t, fake_t = as_feature_pair(real, fake)
    check_enough_samples(real_t.shape[0], 1, "real")
    if protocol not in AUTHENTICITY_PROTOCOLS:
        raise ValueError(
            f"unknown authenticity protocol {protocol!r}; choose from {list(AUTHENTICITY_PROTOCOLS)}"
        )
    if protocol == "authors" and fake_t.shape[0] > real_t.shape[0]:
        raise ValueError(
            f"protocol='authors' indexes the {real_t.shape[0]} real nearest-neighbour distances with fake "
            f"indices, as the authors' code does, so it needs at most as many fakes as reals; got "
            f"{fake_t.shape[0]} fakes (use protocol='paper' or fewer fakes)"
        )
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2; got {num_steps}")
    compute_dtype = resolve_dtype(dtype)
    center = real_t.mean(dim=0, dtype=torch.float64)
    real_c, fake_c = centered(real_t, center, compute_dtype), centered(fake_t, center, compute_dtype)
    block = block_size or default_block_size(real_t.device)
    every_real, every_fake = torch.arange(real_t.shape[0]), torch.arange(fake_t.shape[0])
    with fp32_precision(False):
        real_terms, fake_terms = Augmented(real_c), Augmented(fake_c)
        real_nn_sq = neighbour_list(real_terms, real_t, 1, block).exact_kth(1, every_real)
        real_to_fake, fake_to_real = cross_neighbour_lists(real_terms, real_t, fake_terms, fake_t, block)
        real_to_fake_sq, real_to_fake_index = real_to_fake.exact_nearest(every_real)
        fake_to_real_sq, fake_to_real_index = fake_to_real.exact_nearest(every_fake)

    def to_numpy(x: torch.Tensor) -> np.ndarray:
        return x.double().cpu().numpy()

    alphas = np.linspace(0, 1, num_steps)
    real_to_center = to_numpy(real_c.double().norm(dim=1))
    fake_to_center = to_numpy(fake_c.double().norm(dim=1))
    radii = np.quantile(real_to_center, alphas)
    alpha_precision = (fake_to_center[None, :] <= radii[:, None]).mean(axis=1)

    fake_center = fake_c.double().mean(dim=0)
    nearest_fakes = fake_c.double()[real_to_fake_index.to(fake_c.device)]
    closest_fake_to_fake_center = to_numpy((nearest_fakes - fake_center).norm(dim=1))
    closest_radii = np.quantile(closest_fake_to_fake_center, alphas)
    covered = to_numpy(real_to_fake_sq) <= to_numpy(real_nn_sq)
    beta_recall = (covered[None, :] & (closest_fake_to_fake_center[None, :] <= closest_radii[:, None])).mean(
        axis=1
    )

    if protocol == "paper":
        authentic = to_numpy(fake_to_real_sq) > to_numpy(real_nn_sq)[fake_to_real_index.cpu().numpy()]
    else:
        authentic = to_numpy(real_nn_sq)[real_to_fake_index.cpu().numpy()] < to_numpy(real_to_fake_sq)
    return {
        "alphas": alphas,
        "alpha_precision_curve": alpha_precision,
        "beta_recall_curve": beta_recall,
        "delta_precision_alpha": _integrated_score(alphas, alpha_precision),
        "delta_recall_beta": _integrated_score(alphas, beta_recall),
        "authenticity": float(authentic.mean()),
    }
