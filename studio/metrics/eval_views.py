"""Build an evaluation's `EvalViews` (studio.views): PRD curve, per-sample realism and rarity, the
extreme samples as images, and precision/recall/density/coverage over truncation ψ."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from studio.features.resize import quantize_to_uint8
from studio.metrics.compute import compute_metrics
from studio.metrics.reference import RealReference
from studio.views import EvalViews, extreme_indices, typical_indices

VIEW_SAMPLES = 8  # images per extreme-sample grid
PSI_METRICS = ("pr", "dc")  # what the ψ sweep measures at every ψ
PSI_KEYS = ("precision", "recall", "density", "coverage")


def curve_views(
    curves: Mapping[str, np.ndarray | tuple], images: Callable[[Sequence[int]], torch.Tensor] | None
) -> EvalViews:
    """Views from the `curves` of compute_metrics; `images(indices)` returns the uint8 images
    [k, 3, H, W] of those fake samples (for the rarest, least realistic and most typical ones), or is
    None when the fake set has no images (features from an .npz)."""
    realism, rarity = curves.get("realism"), curves.get("rarity")
    picks = {}
    if rarity is not None:
        picks["rarest"] = extreme_indices(rarity, VIEW_SAMPLES, largest=True)
    if realism is not None:
        picks["least_realistic"] = extreme_indices(realism, VIEW_SAMPLES, largest=False)
        picks["most_typical"] = typical_indices(realism, VIEW_SAMPLES)
    samples = {}
    if images is not None:
        samples = {name: images([int(i) for i in index]) for name, index in picks.items() if len(index)}
    return EvalViews(prd=curves.get("prd"), realism=realism, rarity=rarity, samples=samples or None)


def psi_sweep(
    reference: RealReference,
    fake_features: Callable[[float], Mapping[str, torch.Tensor]],
    psis: Sequence[float],
    options: Mapping[str, Mapping] | None = None,
) -> dict[str, list[float]]:
    """{"psi": psis, "precision": [...], "recall": [...], "density": [...], "coverage": [...]}: the k-NN
    metrics of the fake features `fake_features(psi)` (images generated with truncation ψ) at every ψ."""
    sweep: dict[str, list[float]] = {"psi": [float(psi) for psi in psis], **{key: [] for key in PSI_KEYS}}
    for psi in psis:
        results = compute_metrics(reference, fake_features(float(psi)), PSI_METRICS, options)
        for key in PSI_KEYS:
            sweep[key].append(results[key])
    return sweep


def check_truncations(psis: Sequence[float]) -> None:
    """ValueError unless every ψ of a sweep is a number in [0, 1]."""
    bad = [
        psi for psi in psis if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0 <= psi <= 1
    ]
    if bad:
        raise ValueError(
            f"truncation values must be numbers in [0, 1], e.g. [1.0,0.9,0.8,0.7,0.5]; got {bad}"
        )


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in about [-1, 1] -> uint8 [N, C, H, W] on the CPU."""
    return quantize_to_uint8(images).cpu()
