"""The suite's equivariance metrics (eq_t, eq_t_frac, eq_r) of StyleGAN3 generators."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from studio.metrics import functional as F
from studio.metrics.compute import effective_options, generator_metrics
from studio.metrics.functional.equivariance import KINDS, check_arguments, check_generator
from studio.runtime import gather_computed, shard


class Equivariance:
    """EQ-T, EQ-T_frac and/or EQ-R (dB, Karras et al. 2021) of a generator with an input transform.

    kinds: the requested ones among "eq_t", "eq_t_frac", "eq_r", computed from the same samples (one
    untransformed synthesis shared by all). options: {"equivariance": {keyword: value}} (num_samples,
    translate_max, rotate_max, lanczos_radius, batch, seed, protocol), checked at construction.
    """

    def __init__(self, kinds: list[str], options: Mapping[str, Mapping] | None = None) -> None:
        self.kinds = kinds
        self.options = effective_options(kinds, options)["equivariance"]
        opts = self.options
        check_arguments(
            kinds,
            opts["num_samples"],
            opts["translate_max"],
            opts["rotate_max"],
            opts["lanczos_radius"],
            opts["batch"],
            opts["protocol"],
        )

    def check_generator(self, G: nn.Module) -> None:
        """ValueError unless G has StyleGAN3's input transform; call it before any work."""
        check_generator(G, self.kinds)

    @torch.no_grad()
    def errors(self, G: nn.Module, device: torch.device) -> dict[str, torch.Tensor]:
        """{kind: every sample's (sum of squared errors, number of terms), float64 [num_samples, 2]} on
        every rank. Collective under torch.distributed: each process computes its share of the samples
        (whole batches) and they are gathered in sample order, so the values are those of one process
        (gather_computed)."""
        self.check_generator(G)
        opts = self.options
        part = shard(opts["num_samples"], unit=opts["batch"])
        seeds = range(opts["seed"] + part.start, opts["seed"] + part.stop)
        transform = (opts["translate_max"], opts["rotate_max"], opts["lanczos_radius"])

        def compute() -> dict[str, torch.Tensor]:
            return F.equivariance_errors(
                G, seeds, self.kinds, *transform, opts["batch"], device, opts["protocol"]
            )

        return gather_computed(compute, device)

    def value(self, errors: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """{kind: PSNR in dB} of the gathered errors."""
        protocol = self.options["protocol"]
        return {kind: F.psnr_from_errors(errors[kind].numpy(), protocol) for kind in self.kinds}

    def __call__(self, G: nn.Module, device: torch.device) -> dict[str, float]:
        """{kind: dB} in one process (studio-eval)."""
        return self.value(self.errors(G, device))


def equivariance_for(metrics: list[str], options: Mapping[str, Mapping] | None) -> Equivariance | None:
    """An Equivariance for the kinds `metrics` asks for, else None."""
    kinds = [name for name in generator_metrics(metrics) if name in KINDS]
    return Equivariance(kinds, options) if kinds else None
