"""The metrics of the suite that need the generator itself rather than features: PPL."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from studio.features.lpips import lpips_vgg
from studio.metrics import functional as F
from studio.metrics.compute import effective_options, generator_metrics
from studio.metrics.functional.ppl import check_arguments
from studio.runtime import gather_rows, rank, shard


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
    def __call__(self, G: nn.Module, device: torch.device) -> dict[str, float]:
        """{"ppl": value} on rank 0, {} on the others. Collective under torch.distributed: each process
        computes its share of the paths (whole batches), the distances are gathered in path order, and
        rank 0 filters and averages them, as one process would."""
        opts = self.options
        part = shard(opts["num_samples"], unit=opts["batch"])
        seeds = range(opts["seed"] + part.start, opts["seed"] + part.stop)
        path = {key: opts[key] for key in ("epsilon", "space", "sampling", "crop", "batch")}
        local = F.path_length_distances(G, self.distance.to(device), seeds, device=device, **path)
        distances = gather_rows(local, device)
        if rank() != 0:
            return {}
        return {"ppl": F.ppl_from_distances(distances.numpy(), opts["percentile_methods"])["ppl"]}


def path_length_for(metrics: list[str], options: Mapping[str, Mapping] | None) -> PathLength | None:
    """A PathLength when `metrics` asks for ppl, else None."""
    return PathLength(options) if generator_metrics(metrics) else None
