"""Evaluate two image sets (folders, zips or .npz feature files) with one backbone pass per set.

This is the Python API behind `studio-eval`; it returns the results and the protocol that produced them.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from studio.features import (
    Backbone,
    create_backbone,
    extract_features,
    extract_features_cached,
    resolve_batch,
    resolve_device,
    resolve_workers,
)
from studio.metrics.compute import (
    DEFAULT_METRICS,
    check_sample_counts,
    compute_metrics,
    effective_options,
    feature_metrics,
    generator_metrics,
    needed_features,
    stopwatch,
)
from studio.metrics.equivariance import equivariance_for
from studio.metrics.eval_views import PSI_METRICS, as_uint8, check_truncations, curve_views
from studio.metrics.eval_views import psi_sweep as sweep_psi
from studio.metrics.path_length import path_length_for
from studio.metrics.reference import RealReference, resolve_metrics_device
from studio.sampling import images_for_seeds, sample_images
from studio.views import EvalViews

log = logging.getLogger(__name__)

NPZ_KEYS = ("pool", "logits")
DEFAULT_NUM_GEN = 50_000  # generated images per evaluation of a checkpoint (the standard protocol)


@dataclass
class ImageSet:
    """One side of an evaluation before any feature is extracted, with its size known.

    origin "npz": `features` holds the stored arrays; "images": `dataset` is an ImageFolderDataset;
    "checkpoint": `generator` is a G_ema whose images gen_seed .. gen_seed + count - 1 are the set.
    """

    path: str
    origin: str
    count: int
    features: dict[str, torch.Tensor] | None = None
    dataset: Dataset | None = None
    generator: nn.Module | None = None
    gen_seed: int = 0


def load_npz_features(path: str | Path) -> dict[str, torch.Tensor]:
    """Features stored as .npz: `pool` [N, D] (embedding) and/or `logits` [N, C]; other keys are ignored."""
    with np.load(path, allow_pickle=False) as stored:
        features = {
            key: torch.from_numpy(np.asarray(stored[key], dtype=np.float32))
            for key in NPZ_KEYS
            if key in stored
        }
        if not features:
            raise ValueError(
                f"{path} holds arrays {sorted(stored.files)}, none of {list(NPZ_KEYS)}: store the embedding "
                "as 'pool' [N, D] (and classifier logits as 'logits' [N, C] for Inception Score)"
            )
    counts = {key: value.shape[0] for key, value in features.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"{path}: arrays have different numbers of rows {counts}")
    return features


def _check_path(path: str | Path | None, side: str) -> Path:
    if path is None:
        raise ValueError(
            f"{side}=PATH is required (an image folder, a .zip of images, or a .npz of features)"
        )
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(
            f"{side}={path}: no such file or folder "
            "(expected an image folder, a .zip of images, or a .npz of features)"
        )
    return resolved


def open_image_set(
    path: str | Path,
    side: str,
    max_items: int | None,
    resolution: int | None = None,
    resize: str | None = None,
) -> ImageSet:
    """A .npz of features (read now) or an image folder/zip (listed now, every header checked)."""
    from studio.data import ImageFolderDataset

    resolved = _check_path(path, side)
    if resolved.suffix.lower() == ".npz":
        features = load_npz_features(resolved)
        if max_items is not None:
            features = {key: value[:max_items] for key, value in features.items()}
        return ImageSet(str(resolved), "npz", int(next(iter(features.values())).shape[0]), features=features)
    dataset = ImageFolderDataset(resolved, resolution=resolution, resize=resize, option_prefix="")
    count = len(dataset) if max_items is None else min(len(dataset), max_items)
    return ImageSet(str(resolved), "images", count, dataset=dataset)


def open_checkpoint_set(ckpt: str | Path, num_gen: int, gen_seed: int, device: torch.device) -> ImageSet:
    """`num_gen` images of a checkpoint's G_ema (studio.sampling: seeds gen_seed + i, psi 1); the
    checkpoint is read and its generator built now."""
    from studio.io.checkpoint import load_generator

    resolved = _check_path(ckpt, "ckpt")
    G = load_generator(str(resolved), device)
    return ImageSet(str(resolved), "checkpoint", num_gen, generator=G, gen_seed=gen_seed)


def extract_image_set(
    image_set: ImageSet,
    side: str,
    backbone: Backbone | None,
    use_cache: bool,
    extract_kwargs: Mapping,
    truncation_psi: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The features of `image_set`: stored ones, or extracted with `backbone` (real image sets go
    through the on-disk cache when `use_cache`; a checkpoint's images at `truncation_psi`)."""
    if image_set.features is not None:
        return image_set.features
    if image_set.generator is not None:
        G = image_set.generator
        batch = resolve_batch(extract_kwargs["batch_size"], extract_kwargs["device"], G.img_resolution)
        images = sample_images(
            G, image_set.count, seed=image_set.gen_seed, batch=batch, truncation_psi=truncation_psi
        )
        kwargs = {**extract_kwargs, "batch_size": batch}
        return extract_features(images, backbone, max_items=image_set.count, desc=side, **kwargs)
    extract = extract_features_cached if use_cache else extract_features
    return extract(image_set.dataset, backbone, max_items=image_set.count, desc=side, **extract_kwargs)


def sample_images_of(image_set: ImageSet, index: Sequence[int]) -> torch.Tensor:
    """uint8 images [k, 3, H, W] of samples `index` of an image folder or a checkpoint's generator."""
    if image_set.generator is not None:
        seeds = [image_set.gen_seed + i for i in index]
        return as_uint8(images_for_seeds(image_set.generator, seeds))
    return torch.stack([image_set.dataset[i][0] for i in index])


def studio_version() -> str:
    try:
        return importlib.metadata.version("studio")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def evaluate(
    real: str | Path | None,
    fake: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    backbone: str = "inception",
    weights: str | None = None,
    seed: int = 0,
    num_real: int | None = None,
    num_gen: int | None = None,
    batch: int | str = "auto",
    device: str = "auto",
    metrics_device: str = "auto",
    workers: int | str = "auto",
    options: Mapping[str, Mapping] | None = None,
    cache: bool = True,
    progress: bool = True,
    ckpt: str | Path | None = None,
    gen_seed: int = 0,
    resolution: int | None = None,
    resize: str | None = None,
    views: bool = False,
    psi_sweep: Sequence[float] = (),
) -> tuple[dict[str, float], dict, EvalViews | None]:
    """Compute `metrics` between the `real` set and the `fake` set, or `num_gen` images (default 50000)
    generated by the G_ema of training checkpoint `ckpt`. Returns (results, protocol, views): views
    (studio.views.EvalViews: PRD curve, per-sample realism/rarity, extreme samples, and with `psi_sweep`
    (ckpt= only) precision/recall/density/coverage per truncation ψ) when `views`, else None.
    protocol["metrics_device"] is where the metrics ran; protocol["timings_s"] the wall-clock seconds of
    each stage (each set's features, each metric group, "total"), also logged: they describe the run,
    not how the values were computed.

    metrics=None means the defaults (fid, kid, pr, dc) plus "is" when the fake set has logits.
    seed only matters for `random_*` backbones; metric seeds are options of the functional calls;
    gen_seed is the first latent seed of generated images. batch, workers: images per generation and
    extraction batch, DataLoader processes decoding image folders; "auto" = chosen for the device
    (studio.features.extract.default_batch, default_workers). metrics_device: where the metrics run,
    "auto" = `device` (see `resolve_metrics_device`). resolution/resize: image sets must be
    square and of one size unless `resize` (lanczos, bilinear, center_crop) brings them to `resolution`
    (studio.data.ImageFolderDataset); the backbone then applies its own resize protocol. real=None
    is allowed when every metric needs only the generator (ppl, eq_t, eq_t_frac, eq_r with ckpt=).
    """
    start = time.perf_counter()
    timings: dict[str, float] = {}  # seconds per stage
    if (fake is None) == (ckpt is None):
        raise ValueError(
            "give exactly one of fake=PATH (images or .npz) and ckpt=PATH (a training checkpoint)"
        )
    if metrics is not None:
        effective_options(metrics, options)  # names and options, before anything is read
        if generator_metrics(metrics) and ckpt is None:
            raise ValueError(
                f"metric(s) {generator_metrics(metrics)} need a generator: pass ckpt=PATH (a studio "
                "training checkpoint) instead of fake="
            )
    if psi_sweep and ckpt is None:
        raise ValueError("psi_sweep generates images at each truncation: pass ckpt=PATH instead of fake=")
    check_truncations(psi_sweep)
    torch_device = resolve_device(device)
    metrics_on = resolve_metrics_device(metrics_device, torch_device)
    resolve_batch(batch, torch_device)  # bad settings fail before anything is read
    resolve_workers(workers, torch_device)
    # Everything that can fail is checked before the first image goes through the backbone: sources
    # readable and counted, checkpoint loaded, weights found, metric names, options and counts.
    sizing = {"resolution": resolution, "resize": resize}
    generator_only = metrics is not None and not feature_metrics(metrics) and not psi_sweep
    real_images = (
        None if real is None and generator_only else open_image_set(real, "real", num_real, **sizing)
    )
    real_count = 0 if real_images is None else real_images.count
    if ckpt is not None:
        num_gen = DEFAULT_NUM_GEN if num_gen is None else num_gen
        fake_images = open_checkpoint_set(ckpt, num_gen, gen_seed, torch_device)
    else:
        fake_images = open_image_set(fake, "fake", num_gen, **sizing)
    equivariance = None if metrics is None else equivariance_for(metrics, options)
    if equivariance is not None:
        equivariance.check_generator(fake_images.generator)
    net = None
    extracting = real_images is None or real_images.features is None or fake_images.features is None
    if extracting and (metrics is None or feature_metrics(metrics) or psi_sweep):
        net = create_backbone(backbone, weights=weights, device=torch_device, seed=seed)
    if metrics is None:
        fake_outputs = net.feature_dims if fake_images.features is None else fake_images.features
        metrics = list(DEFAULT_METRICS) + (["is"] if "logits" in fake_outputs else [])
    if net is not None:
        net.require_outputs(needed_features(metrics), f"metrics {list(metrics)}")
    check_sample_counts(metrics, options, real_count, fake_images.count)
    if psi_sweep:
        check_sample_counts(PSI_METRICS, options, real_count, fake_images.count)
    path_length = path_length_for(metrics, options)
    results: dict[str, float] = {}
    curves: dict = {}
    extract_kwargs = {
        "batch_size": batch,
        "device": torch_device,
        "num_workers": workers,
        "progress": progress,
    }
    reference = None
    if feature_metrics(metrics) or psi_sweep:
        with stopwatch(timings, "real features"):
            real_features = extract_image_set(real_images, "real", net, cache, extract_kwargs)
            reference = RealReference(real_features, metrics_on)
    fakes_by_psi: dict[float, dict[str, torch.Tensor]] = {}  # psi 1 serves the metrics and the sweep

    def fake_features(psi: float) -> dict[str, torch.Tensor]:
        if psi not in fakes_by_psi:
            side = "fake" if psi == 1.0 else f"fake psi={psi}"
            with stopwatch(timings, f"{side} features"):
                fakes_by_psi[psi] = extract_image_set(fake_images, side, net, False, extract_kwargs, psi)
        return fakes_by_psi[psi]

    if feature_metrics(metrics):
        fakes = fake_features(1.0)
        results = compute_metrics(reference, fakes, feature_metrics(metrics), options, curves, timings)
    if path_length is not None:
        with stopwatch(timings, "ppl"):
            results |= path_length(fake_images.generator, torch_device)
    if equivariance is not None:
        with stopwatch(timings, "equivariance"):
            results |= equivariance(fake_images.generator, torch_device)
    eval_views = None
    if views:
        eval_views = curve_views(
            curves, None if fake_images.features is not None else partial(sample_images_of, fake_images)
        )
        if psi_sweep:
            eval_views.psi_sweep = sweep_psi(reference, fake_features, psi_sweep, options)
    timings["total"] = time.perf_counter() - start
    log.info("time taken: %s", ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timings.items()))
    protocol = {
        "metrics": list(metrics),
        "options": effective_options(metrics, options),
        "counts": {"real": None if real_images is None else real_count, "fake": fake_images.count},
        "sources": {
            side: None
            if s is None
            else {
                "path": s.path,
                "origin": s.origin,
                "fingerprint": s.dataset.fingerprint() if s.dataset else None,
            }
            for side, s in (("real", real_images), ("fake", fake_images))
        },
        "generation": {"gen_seed": gen_seed, "truncation_psi": 1.0, "noise_mode": "const"}
        if ckpt is not None
        else None,
        "backbone": net.describe()
        if net is not None
        else {"backbone": "precomputed (.npz)", "requested": backbone}
        if feature_metrics(metrics)
        else None,
        "image_sizing": sizing,
        "backbone_seed": seed,
        "device": str(torch_device),
        "metrics_device": str(metrics_on),
        "studio_version": studio_version(),
        "torch_version": torch.__version__,
        "timings_s": {stage: round(seconds, 3) for stage, seconds in timings.items()},
    }
    return results, protocol, eval_views
