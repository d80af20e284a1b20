"""Backbone base class, input protocol and the name registry (`create_backbone`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from studio.features.resize import resize_bilinear_tf1

RESIZE_MODES = ("tf1_bilinear", "bilinear_antialias", "bicubic_antialias")


@dataclass(frozen=True)
class InputProtocol:
    """How uint8 images are turned into network input.

    resolution: square side the network sees. resize: one of RESIZE_MODES (applied only when the size
    differs). mean, std: per-channel, in uint8 units: input = (resize(x) - mean) / std, so the FID
    Inception's (x - 128) / 128 gives exactly the TF range [-1, 0.9921875].
    """

    resolution: int
    resize: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.resize!r}; valid: {', '.join(RESIZE_MODES)}")

    @property
    def value_range(self) -> tuple[float, float]:
        """Range of the network input for uint8 images 0..255 (channel 0)."""
        return (-self.mean[0] / self.std[0], (255.0 - self.mean[0]) / self.std[0])

    def as_dict(self) -> dict:
        return asdict(self) | {"value_range": list(self.value_range)}


IMAGENET_PROTOCOL_224 = InputProtocol(
    224, "bilinear_antialias", mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)
)


class Backbone(nn.Module):
    """A frozen feature network that maps uint8 images [N, 3, H, W] to named feature tensors.

    Subclasses set `protocol`, `feature_dims` ({output name: width}; "pool" is the embedding that FID,
    KID and the k-NN metrics use, "logits" the classifier output Inception Score uses) and `weights_id`
    (sha256 of the weights file, or e.g. "random:seed=0"), and implement `embed(x)` on preprocessed input.
    Convolutional backbones set `channels_last`: their weights and inputs use that memory layout, which
    ran Inception-v3 about 1.7x faster than NCHW on a 2-core CPU (benchmarks/extract_speed.py).
    """

    name: str = ""
    channels_last: bool = False
    protocol: InputProtocol
    feature_dims: dict[str, int]
    weights_id: str

    def require_outputs(self, outputs: set[str] | list[str], purpose: str) -> None:
        """Raise a ValueError saying what to do if this backbone lacks any of `outputs`."""
        missing = sorted(set(outputs) - set(self.feature_dims))
        if missing:
            hint = self.missing_output_hint(missing)
            raise ValueError(
                f"{purpose} needs backbone output(s) {missing}, but backbone {self.name!r} only has "
                f"{sorted(self.feature_dims)}." + (f" {hint}" if hint else "")
            )

    def missing_output_hint(self, missing: list[str]) -> str:
        """How to get the missing outputs (subclasses with optional heads override this)."""
        return ""

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, H, W] -> float32 [N, 3, R, R] normalised as `protocol` says."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"backbone {self.name!r} expects uint8 images [N, 3, H, W], "
                f"got {images.dtype} {tuple(images.shape)} "
                "(quantise float images with studio.features.quantize_to_uint8 first)"
            )
        mean = torch.tensor(self.protocol.mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.protocol.std, device=images.device).view(1, 3, 1, 1)
        # Normalising commutes with the (linear, weights summing to 1) resize, so it runs first, on the
        # small image when upscaling; the result differs from normalising after the resize by rounding.
        x = (images.float() - mean) / std
        size = self.protocol.resolution
        if x.shape[2] != size or x.shape[3] != size:
            if self.protocol.resize == "tf1_bilinear":
                x = resize_bilinear_tf1(x, (size, size))
            else:
                mode = self.protocol.resize.removesuffix("_antialias")
                x = F.interpolate(x, size=(size, size), mode=mode, align_corners=False, antialias=True)
        return x

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 [N, 3, H, W] -> {name: float32 [N, feature_dims[name]]}."""
        x = self.preprocess(images)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return {key: value.float() for key, value in self.embed(x).items()}

    def describe(self) -> dict:
        """The protocol facts that results must be reported with."""
        return {
            "backbone": self.name,
            "weights_sha256": self.weights_id,
            "features": dict(self.feature_dims),
            **self.protocol.as_dict(),
        }


BackboneFactory = Callable[..., Backbone]
_REGISTRY: dict[str, BackboneFactory] = {}


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator: make `factory(weights=None, seed=0) -> Backbone` available as `create_backbone(name)`."""

    def add(factory: BackboneFactory) -> BackboneFactory:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return add


def list_backbones() -> list[str]:
    return sorted(_REGISTRY)


def create_backbone(
    name: str, weights: str | None = None, device: str | torch.device = "cpu", seed: int = 0
) -> Backbone:
    """Instantiate a registered backbone, frozen and in eval mode, on `device`.

    weights: explicit weights file (otherwise the cache / package / download order of
    `studio.features.weights`). seed: initialisation seed of the `random_*` backbones.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(list_backbones())}")
    backbone = _REGISTRY[name](weights=weights, seed=seed)
    backbone.name = name
    layout = torch.channels_last if backbone.channels_last else torch.contiguous_format
    return backbone.eval().requires_grad_(False).to(device, memory_format=layout)
