"""The metrics of the suite that need the generator itself rather than features: PPL."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from studio.features.lpips import lpips_vgg
from studio.metrics import functional as F
from studio.metrics.compute import effective_options, generator_metrics


class PathLength:
    """Perceptual path length (metric "ppl") of a generator with the LPIPS-VGG distance.

    The LPIPS weights are loaded at construction, so a missing file fails when a run starts, not at its
    first evaluation. options: {"perceptual_path_length": {keyword: value}} (e.g. num_samples, epsilon,
    space, sampling, crop, batch, seed); vgg_weights / lin_weights: explicit LPIPS weight files.
    """

    def __init__(
        self,
        options: Mapping[str, Mapping] | None = None,
        vgg_weights: str | None = None,
        lin_weights: str | None = None,
    ) -> None:
        self.options = effective_options(["ppl"], options)["perceptual_path_length"]
        self.distance = lpips_vgg(vgg_weights, lin_weights)

    @torch.no_grad()
    def __call__(self, G: nn.Module, device: torch.device) -> dict[str, float]:
        distance = self.distance.to(device)
        return {"ppl": F.perceptual_path_length(G, distance, device=device, **self.options)["ppl"]}


def path_length_for(metrics: list[str], options: Mapping[str, Mapping] | None) -> PathLength | None:
    """A PathLength when `metrics` asks for ppl, else None."""
    return PathLength(options) if generator_metrics(metrics) else None
