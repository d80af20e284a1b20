"""The metrics of the suite that need the generator itself rather than features: PPL."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from studio.features.lpips import lpips_vgg
from studio.metrics import functional as F
from studio.metrics.compute import effective_options, generator_metrics
from studio.metrics.functional.ppl import check_arguments
from studio.runtime import gather_computed, shard


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
        opts = self.options
        check_arguments(opts["num_samples"], opts["epsilon"], opts["space"], opts["sampling"], opts["batch"])
        self.distance = lpips_vgg(vgg_weights, lin_weights)

    @torch.no_grad()
    def distances(self, G: nn.Module, device: torch.device) -> torch.Tensor:
        """Every path's d_i, float64 [num_samples], on every rank. Collective under torch.distributed:
        each process computes its share of the paths (whole batches) and they are gathered in path
        order, so the values are those of one process (studio.runtime.gather_computed)."""
        opts = self.options
        part = shard(opts["num_samples"], unit=opts["batch"])
        seeds = range(opts["seed"] + part.start, opts["seed"] + part.stop)
        path = {key: opts[key] for key in ("epsilon", "space", "sampling", "crop", "batch")}
        distance = self.distance.to(device)

        def compute() -> dict[str, torch.Tensor]:
            return {"d": F.path_length_distances(G, distance, seeds, device=device, **path)}

        return gather_computed(compute, device)["d"]

    def value(self, distances: torch.Tensor) -> dict[str, float]:
        """{"ppl": the 1st-99th percentile mean of the gathered distances}."""
        return {"ppl": F.ppl_from_distances(distances.numpy(), self.options["percentile_methods"])["ppl"]}

    def __call__(self, G: nn.Module, device: torch.device) -> dict[str, float]:
        """{"ppl": value} in one process (studio-eval)."""
        return self.value(self.distances(G, device))


def path_length_for(metrics: list[str], options: Mapping[str, Mapping] | None) -> PathLength | None:
    """A PathLength when `metrics` asks for ppl, else None."""
    return PathLength(options) if "ppl" in generator_metrics(metrics) else None
