"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

The unbiased MMD^2 estimate with the polynomial kernel k(x, y) = (gamma x.y + coef0)^degree,
gamma = 1/D by default, averaged over random subsets of both sets. Kernels are computed in float64.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from studio.metrics.functional._inputs import FeatureArray, as_feature_pair

SubsetSampler = Literal["numpy", "torch"]


def polynomial_mmd2_unbiased(
    x: torch.Tensor, y: torch.Tensor, degree: int, gamma: float, coef0: float
) -> torch.Tensor:
    """Unbiased MMD^2 between x (m, D) and y (m, D); the diagonals of K_xx and K_yy are excluded."""
    m = x.shape[0]
    k_xx = (x @ x.T * gamma + coef0) ** degree
    k_yy = (y @ y.T * gamma + coef0) ** degree
    k_xy = (x @ y.T * gamma + coef0) ** degree
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)


def _subset_indices(
    sampler: SubsetSampler, seed: int, n_real: int, n_fake: int, size: int, num_subsets: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    if sampler == "numpy":
        # torch-fidelity: np.random.RandomState(seed).choice without replacement, its input1 (the
        # generated set) drawn before input2 (the real set) for every subset.
        rng = np.random.RandomState(seed)
        pairs = []
        for _ in range(num_subsets):
            fake_idx = rng.choice(n_fake, size, replace=False)
            real_idx = rng.choice(n_real, size, replace=False)
            pairs.append((real_idx, fake_idx))
        return pairs
    if sampler == "torch":
        # torchmetrics: torch.randperm(n)[:size] from the default CPU generator, real before fake.
        gen = torch.Generator().manual_seed(seed)
        return [
            (
                torch.randperm(n_real, generator=gen)[:size].numpy(),
                torch.randperm(n_fake, generator=gen)[:size].numpy(),
            )
            for _ in range(num_subsets)
        ]
    raise ValueError(f"sampler must be 'numpy' (torch-fidelity) or 'torch' (torchmetrics); got {sampler!r}")


def kid(
    real: FeatureArray,
    fake: FeatureArray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,
    sampler: SubsetSampler = "numpy",
) -> dict[str, float]:
    """KID between real (N, D) and fake (M, D) features.

    Each of `num_subsets` subsets draws min(subset_size, N, M) samples without replacement from each
    set. Returns {"kid_mean", "kid_std"} as floats; the std is over subsets with ddof=0 (both
    torch-fidelity and torchmetrics). `sampler="numpy"` reproduces torch-fidelity's subsets for
    `rng_seed=seed` (default 2020, its default); `sampler="torch"` reproduces torchmetrics'
    subsets after `torch.manual_seed(seed)`.
    """
    real_t, fake_t = as_feature_pair(real, fake)
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1; got {num_subsets}")
    size = min(subset_size, real_t.shape[0], fake_t.shape[0])
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per subset; got subset size {size}")
    gamma = 1.0 / real_t.shape[1] if gamma is None else gamma
    indices = _subset_indices(sampler, seed, real_t.shape[0], fake_t.shape[0], size, num_subsets)
    device = real_t.device
    # Each subset is cast to float64 after it is drawn: no float64 copy of the whole sets.
    mmds = torch.stack(
        [
            polynomial_mmd2_unbiased(
                real_t[torch.from_numpy(r).to(device)].double(),
                fake_t[torch.from_numpy(f).to(device)].double(),
                degree,
                gamma,
                coef0,
            )
            for r, f in indices
        ]
    )
    return {"kid_mean": float(mmds.mean()), "kid_std": float(mmds.std(correction=0))}
