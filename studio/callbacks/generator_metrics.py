"""The metric suite (eval.metrics) on G_ema samples against the training set, at evaluation ticks."""

import logging
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from studio.features import create_backbone, extract_features, extract_features_cached, resolve_batch
from studio.metrics.compute import (
    check_metric_names,
    check_sample_counts,
    compute_metrics,
    feature_metrics,
    needed_features,
)
from studio.metrics.equivariance import equivariance_for
from studio.metrics.eval_views import PSI_METRICS, as_uint8, curve_views, psi_sweep
from studio.metrics.path_length import path_length_for
from studio.metrics.reference import RealReference, resolve_metrics_device
from studio.runtime import gather_computed, rank, shard
from studio.sampling import images_for_seeds, sample_images
from studio.views import EvalViews

log = logging.getLogger(__name__)


class GeneratorMetrics:
    """Computes `metrics` for `num_gen` images of a generator against the real `dataset`.

    Real features are extracted once per process (and cached on disk, keyed by the dataset fingerprint,
    backbone, weights and count); mirrored copies of an x-flipped dataset are not part of the real set.
    Image i is drawn as studio.sampling does it (latent and class from seed + i, constant noise), so every
    evaluation of a run sees the same latents, and the same images studio-generate writes for that seed.
    With `views`, each call also leaves the dashboards' curves and per-sample views in `self.views` (the
    PRD curve, realism and rarity per sample, the rarest / least realistic / most typical images, and
    with `psi_sweep` precision, recall, density and coverage of images generated at each truncation ψ).
    The metrics run on `metrics_device` ("auto": G's device), where the real set's features and k-NN
    state stay between ticks.
    """

    def __init__(
        self,
        dataset: Dataset,
        metrics: Sequence[str],
        num_gen: int,
        backbone: str = "inception",
        weights: str | None = None,
        num_real: int | None = None,
        batch: int | str = "auto",
        seed: int = 0,
        options: Mapping[str, Mapping] | None = None,
        views: bool = False,
        psi_sweep: Sequence[float] = (),
        metrics_device: str = "auto",
    ) -> None:
        self.metrics = check_metric_names(metrics)
        self.feature_metrics = feature_metrics(self.metrics)
        self.dataset = dataset
        self.num_gen = int(num_gen)
        unmirrored = len(dataset) // 2 if getattr(dataset, "xflip", False) else len(dataset)
        self.num_real = unmirrored if num_real is None else min(int(num_real), unmirrored)
        # Everything a tick needs is checked at start: option names, sample counts, weights.
        check_sample_counts(self.metrics, options, self.num_real, self.num_gen, setting_prefix="eval.")
        self.psi_sweep = [float(psi) for psi in psi_sweep]
        if self.psi_sweep:
            check_sample_counts(PSI_METRICS, options, self.num_real, self.num_gen, setting_prefix="eval.")
        self.with_views = views
        self.views: EvalViews | None = None  # of the last call, for the dashboards
        self._backbone = None
        if self.feature_metrics or self.psi_sweep:
            self._backbone = create_backbone(backbone, weights=weights)
            self._backbone.require_outputs(needed_features(self.metrics), f"eval.metrics {self.metrics}")
        self.path_length = path_length_for(self.metrics, options)
        # Whether G has an input transform: checked at training start (studio.training.run) and each tick.
        self.equivariance = equivariance_for(self.metrics, options)
        resolve_batch(batch, torch.device("cpu"))  # a bad setting fails now, not at the first tick
        resolve_metrics_device(metrics_device, torch.device("cpu"))
        self.metrics_device = metrics_device  # "auto": the device G runs on at each call
        self.batch = batch  # resolved for the device (and generator resolution) at each call
        self.seed = int(seed)
        self.options = options
        self._real: RealReference | None = None  # prepared at the first tick, reused by the later ones

    @torch.no_grad()
    def __call__(self, G: nn.Module, device: torch.device) -> dict[str, float]:
        """The metrics (on rank 0; other ranks return {}). Collective under torch.distributed: every
        rank generates and embeds its shard of the fake images (and PPL paths, equivariance samples) in
        whole batches, they are gathered in image order, and rank 0 computes, so the numbers equal a
        one-process run. Every collective comes first; an error in a rank's own share makes every rank
        raise there, and rank 0's computations run last, so a failed evaluation never leaves the
        processes out of step."""
        self.views = None
        if self.equivariance is not None:
            self.equivariance.check_generator(G)  # before any work of the tick, on every rank alike
        ppl_distances = self.path_length.distances(G, device) if self.path_length is not None else None
        eq_errors = self.equivariance.errors(G, device) if self.equivariance is not None else None
        psis = [1.0] * bool(self.feature_metrics) + [psi for psi in self.psi_sweep if self.with_views]
        fakes = {psi: self._fake_features(G, device, psi) for psi in dict.fromkeys(psis)}  # psi 1 once
        if rank() != 0:
            return {}
        results = {} if ppl_distances is None else self.path_length.value(ppl_distances)
        if eq_errors is not None:
            results |= self.equivariance.value(eq_errors)
        if not fakes:
            return results
        if self._real is None:
            extract = {"batch_size": self.batch, "device": device}  # "auto": sized by the images
            real = extract_features_cached(
                self.dataset, self._backbone.to(device), max_items=self.num_real, desc="real", **extract
            )
            self._real = RealReference(real, resolve_metrics_device(self.metrics_device, device))
        curves: dict = {}
        if self.feature_metrics:
            results |= compute_metrics(self._real, fakes[1.0], self.feature_metrics, self.options, curves)
        if self.with_views:
            self.views = curve_views(
                curves, lambda index: as_uint8(images_for_seeds(G, [self.seed + i for i in index]))
            )
            if self.psi_sweep:
                self.views.psi_sweep = psi_sweep(self._real, fakes.__getitem__, self.psi_sweep, self.options)
        return results

    def _fake_features(self, G: nn.Module, device: torch.device, psi: float) -> dict[str, torch.Tensor]:
        """Features of the num_gen images at truncation `psi`, gathered from every rank's share (whole
        batches: bitwise the one-process features)."""
        backbone = self._backbone.to(device)
        batch = resolve_batch(self.batch, device, G.img_resolution)
        part = shard(self.num_gen, unit=batch)

        def compute() -> dict[str, torch.Tensor]:
            if not len(part):  # a rank may have no image when num_gen < number of processes
                return {name: torch.zeros(0, dim) for name, dim in backbone.feature_dims.items()}
            images = sample_images(G, len(part), seed=self.seed + part.start, batch=batch, truncation_psi=psi)
            extract = {"batch_size": batch, "device": device, "progress": rank() == 0}
            return extract_features(images, backbone, max_items=len(part), desc=f"fake psi={psi}", **extract)

        return gather_computed(compute, device)
