"""Feature backbones (registry), the FID Inception, preprocessing, extraction and the feature cache."""

from studio.features import backbones as _builtin_backbones  # noqa: F401  (registers the built-ins)
from studio.features import external as _external_backbones  # noqa: F401  (registers vgg16/clip/dinov2)
from studio.features.backbone import (
    Backbone,
    InputProtocol,
    create_backbone,
    list_backbones,
    register_backbone,
)
from studio.features.cache import extract_features_cached, feature_cache_key
from studio.features.extract import extract_features, resolve_batch, resolve_device, resolve_workers
from studio.features.inception import InceptionV3FID
from studio.features.inception_weights import load_fid_inception
from studio.features.resize import quantize_to_uint8, resize_bilinear_tf1
from studio.features.weights import WeightsNotFoundError, file_sha256, resolve_weights

__all__ = [
    "Backbone",
    "InceptionV3FID",
    "InputProtocol",
    "WeightsNotFoundError",
    "create_backbone",
    "extract_features",
    "extract_features_cached",
    "feature_cache_key",
    "file_sha256",
    "list_backbones",
    "load_fid_inception",
    "quantize_to_uint8",
    "register_backbone",
    "resize_bilinear_tf1",
    "resolve_batch",
    "resolve_device",
    "resolve_weights",
    "resolve_workers",
]
