"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs").

IS = exp(E_x KL(p(y|x) || p(y))) per split; mean and std over splits. Computed in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from studio.metrics.functional._inputs import FeatureArray, as_features

IS_PROTOCOLS = ("torch-fidelity", "unshuffled")


def inception_score(
    logits_or_probs: FeatureArray,
    splits: int = 10,
    from_logits: bool = True,
    protocol: str = "torch-fidelity",
    seed: int = 2020,
    ddof: int = 0,
) -> dict[str, float]:
    """IS of class logits (N, C) (or probabilities with `from_logits=False`); higher is better.

    protocol "torch-fidelity" (default) reproduces torch-fidelity's `isc_features_to_metric`: rows
    permuted by np.random.RandomState(seed).permutation(N); "unshuffled" keeps the given order. Split i
    holds rows [i*N//splits, (i+1)*N//splits); the std over splits has ddof=0 as torch-fidelity's
    (torchmetrics reports ddof=1 and shuffles with torch.randperm). Returns {"is_mean", "is_std"}.
    """
    x = as_features(logits_or_probs, "logits_or_probs").double()
    n = x.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be between 1 and the number of samples ({n}); got {splits}")
    if splits - ddof < 1:
        raise ValueError(f"ddof={ddof} needs more than {ddof} splits; got splits={splits}")
    if protocol not in IS_PROTOCOLS:
        raise ValueError(f"unknown Inception Score protocol {protocol!r}; choose from {list(IS_PROTOCOLS)}")
    if protocol == "torch-fidelity":
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n)).to(x.device)]
    if from_logits:
        log_p = x.log_softmax(dim=1)
    else:
        if (x < 0).any():
            raise ValueError("probabilities must be non-negative; pass from_logits=True for logits")
        log_p = (x / x.sum(dim=1, keepdim=True)).log()
    p = log_p.exp()
    scores = []
    for i in range(splits):
        rows = slice(i * n // splits, (i + 1) * n // splits)
        log_marginal = p[rows].mean(dim=0, keepdim=True).log()
        # 0 * log 0 is 0: classes with zero probability contribute nothing.
        kl = torch.where(p[rows] > 0, p[rows] * (log_p[rows] - log_marginal), 0.0).sum(dim=1)
        scores.append(kl.mean().exp())
    stacked = torch.stack(scores)
    return {
        "is_mean": float(stacked.mean()),
        "is_std": float(stacked.std(correction=ddof)) if splits > 1 else 0.0,
    }
