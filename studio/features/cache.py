"""On-disk cache of real-set features: `$STUDIO_CACHE/features/<key>.npz`."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ops.environment import cache_dir
from studio.features.backbone import Backbone
from studio.features.extract import extract_features
from studio.io.atomic import atomic_write

log = logging.getLogger(__name__)


def feature_cache_key(fingerprint: str, backbone: Backbone, count: int) -> str:
    """Hash of everything the features depend on: data, network, weights, resize protocol, sample count."""
    fields = {
        "dataset": fingerprint,
        "backbone": backbone.name,
        "weights_sha256": backbone.weights_id,
        "resize": f"{backbone.protocol.resize}@{backbone.protocol.resolution}",
        "count": int(count),
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def features_cache_dir() -> Path:
    return cache_dir("features")


def load_cached(key: str) -> dict[str, torch.Tensor] | None:
    path = features_cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    with np.load(path) as stored:
        return {name: torch.from_numpy(stored[name]) for name in stored.files}


def save_cached(key: str, features: dict[str, torch.Tensor]) -> Path:
    """Write atomically (temp file in the same folder + rename) so readers never see a partial file."""
    target = features_cache_dir() / f"{key}.npz"
    with atomic_write(target) as out:
        np.savez(out, **{name: value.numpy() for name, value in features.items()})
    return target


def extract_features_cached(
    dataset, backbone: Backbone, max_items: int | None = None, **extract_kwargs
) -> dict[str, torch.Tensor]:
    """`extract_features` for a dataset with `.fingerprint()`, reusing cached features when the key matches.

    The count in the key is the number of images actually used (min(len(dataset), max_items)).
    """
    count = len(dataset) if max_items is None else min(len(dataset), max_items)
    key = feature_cache_key(dataset.fingerprint(), backbone, count)
    cached = load_cached(key)
    if cached is not None and set(backbone.feature_dims) <= set(cached):
        log.info("feature cache hit: %s (%s, %d images)", key, backbone.name, count)
        return cached
    log.info("feature cache miss: %s (%s, %d images)", key, backbone.name, count)
    features = extract_features(dataset, backbone, max_items=count, **extract_kwargs)
    path = save_cached(key, features)
    log.info("feature cache saved: %s", path)
    return features
