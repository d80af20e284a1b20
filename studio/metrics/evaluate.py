"""Evaluate two image sets (folders, zips or .npz feature files) with one backbone pass per set.

This is the Python API behind `studio-eval`; it returns the results and the protocol that produced them.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from studio.features import (
    Backbone,
    create_backbone,
    extract_features,
    extract_features_cached,
    resolve_device,
)
from studio.metrics.compute import DEFAULT_METRICS, compute_metrics, effective_options, needed_features

log = logging.getLogger(__name__)

NPZ_KEYS = ("pool", "logits")
DEFAULT_NUM_GEN = 50_000  # generated images per evaluation of a checkpoint (the standard protocol)


@dataclass
class FeatureSet:
    """Features of one image set and their origin: "npz" (a file) or "images" (run through the backbone)."""

    features: dict[str, torch.Tensor]
    origin: str
    path: str
    fingerprint: str | None = None

    @property
    def count(self) -> int:
        return int(next(iter(self.features.values())).shape[0])


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


def load_feature_set(
    path: str | Path,
    side: str,
    backbone_factory,
    max_items: int | None,
    use_cache: bool,
    extract_kwargs: Mapping,
    resolution: int | None = None,
    resize: str | None = None,
) -> FeatureSet:
    """Read .npz features, or extract them from an image folder/zip (real sets go through the cache)."""
    from studio.data import ImageFolderDataset

    resolved = _check_path(path, side)
    if resolved.suffix.lower() == ".npz":
        features = load_npz_features(resolved)
        if max_items is not None:
            features = {key: value[:max_items] for key, value in features.items()}
        return FeatureSet(features, "npz", str(resolved))
    dataset = ImageFolderDataset(resolved, resolution=resolution, resize=resize, option_prefix="")
    backbone = backbone_factory()
    if use_cache:
        features = extract_features_cached(
            dataset, backbone, max_items=max_items, desc=side, **extract_kwargs
        )
    else:
        features = extract_features(dataset, backbone, max_items=max_items, desc=side, **extract_kwargs)
    return FeatureSet(features, "images", str(resolved), fingerprint=dataset.fingerprint())


def generated_feature_set(
    ckpt: str | Path, backbone: Backbone, num_gen: int, gen_seed: int, extract_kwargs: Mapping
) -> FeatureSet:
    """Features of `num_gen` images of a checkpoint's G_ema (studio.sampling: seeds gen_seed + i, psi 1)."""
    from studio.io.checkpoint import load_generator
    from studio.sampling import sample_images

    resolved = _check_path(ckpt, "ckpt")
    G = load_generator(str(resolved), extract_kwargs["device"])
    images = sample_images(G, num_gen, seed=gen_seed, batch=extract_kwargs["batch_size"])
    features = extract_features(images, backbone, max_items=num_gen, desc="fake", **extract_kwargs)
    return FeatureSet(features, "checkpoint", str(resolved))


def studio_version() -> str:
    try:
        return importlib.metadata.version("studio")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def evaluate(
    real: str | Path,
    fake: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    backbone: str = "inception",
    weights: str | None = None,
    seed: int = 0,
    num_real: int | None = None,
    num_gen: int | None = None,
    batch: int = 64,
    device: str = "auto",
    workers: int = 0,
    options: Mapping[str, Mapping] | None = None,
    cache: bool = True,
    progress: bool = True,
    ckpt: str | Path | None = None,
    gen_seed: int = 0,
    resolution: int | None = None,
    resize: str | None = None,
) -> tuple[dict[str, float], dict]:
    """Compute `metrics` between the `real` set and the `fake` set, or `num_gen` images (default 50000)
    generated by the G_ema of training checkpoint `ckpt`. Returns (results, protocol).

    metrics=None means the defaults (fid, kid, pr, dc) plus "is" when the fake set has logits.
    seed only matters for `random_*` backbones; metric seeds are options of the functional calls;
    gen_seed is the first latent seed of generated images. resolution/resize: image sets must be
    square and of one size unless `resize` (lanczos, bilinear, center_crop) brings them to `resolution`
    (studio.data.ImageFolderDataset); the backbone then applies its own resize protocol.
    """
    if (fake is None) == (ckpt is None):
        raise ValueError(
            "give exactly one of fake=PATH (images or .npz) and ckpt=PATH (a training checkpoint)"
        )
    torch_device = resolve_device(device)
    built: list[Backbone] = []

    def backbone_factory() -> Backbone:
        if not built:
            built.append(create_backbone(backbone, weights=weights, device=torch_device, seed=seed))
            if metrics is not None:
                built[0].require_outputs(needed_features(metrics), f"metrics {list(metrics)}")
        return built[0]

    extract_kwargs = {
        "batch_size": batch,
        "device": torch_device,
        "num_workers": workers,
        "progress": progress,
    }
    effective_options(metrics or DEFAULT_METRICS, options)  # fail on bad names before any extraction
    sizing = {"resolution": resolution, "resize": resize}
    real_set = load_feature_set(real, "real", backbone_factory, num_real, cache, extract_kwargs, **sizing)
    if ckpt is not None:
        num_gen = DEFAULT_NUM_GEN if num_gen is None else num_gen
        fake_set = generated_feature_set(ckpt, backbone_factory(), num_gen, gen_seed, extract_kwargs)
    else:
        fake_set = load_feature_set(fake, "fake", backbone_factory, num_gen, False, extract_kwargs, **sizing)
    if metrics is None:
        metrics = list(DEFAULT_METRICS) + (["is"] if "logits" in fake_set.features else [])
    results = compute_metrics(real_set.features, fake_set.features, metrics, options)
    protocol = {
        "metrics": list(metrics),
        "options": effective_options(metrics, options),
        "counts": {"real": real_set.count, "fake": fake_set.count},
        "sources": {
            side: {"path": s.path, "origin": s.origin, "fingerprint": s.fingerprint}
            for side, s in (("real", real_set), ("fake", fake_set))
        },
        "generation": {"gen_seed": gen_seed, "truncation_psi": 1.0, "noise_mode": "const"}
        if ckpt is not None
        else None,
        "backbone": built[0].describe()
        if built
        else {"backbone": "precomputed (.npz)", "requested": backbone},
        "image_sizing": sizing,
        "backbone_seed": seed,
        "device": str(torch_device),
        "studio_version": studio_version(),
        "torch_version": torch.__version__,
    }
    return results, protocol
