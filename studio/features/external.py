"""Hooks for backbones whose weights must be supplied by the user: vgg16, clip, dinov2.

They load when the weights file is given (weights=FILE) or present in `$STUDIO_CACHE/weights`, and
otherwise raise `WeightsNotFoundError` naming the file to put there. Nothing is bundled.
"""

from __future__ import annotations

import warnings

import torch
import torchvision
from torch import nn

from studio.features.backbone import IMAGENET_PROTOCOL_224, Backbone, InputProtocol, register_backbone
from studio.features.weights import WeightsSpec, file_sha256, resolve_weights

VGG16_WEIGHTS = WeightsSpec(
    filenames=("vgg16-397923af.pth",),
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    note="This is torchvision's ImageNet VGG16; features are its fc2 activations (after ReLU).",
)
CLIP_WEIGHTS = WeightsSpec(
    filenames=("ViT-L-14.pt",),
    note="Use OpenAI's CLIP release file ViT-L-14.pt (a TorchScript archive); features are encode_image().",
)
DINOV2_WEIGHTS = WeightsSpec(
    filenames=("dinov2_vitl14.pt",),
    note=(
        "Export it once on a machine with internet: m = torch.hub.load('facebookresearch/dinov2', "
        "'dinov2_vitl14').eval(); torch.jit.trace(m, torch.zeros(1, 3, 224, 224)).save('dinov2_vitl14.pt')"
    ),
)
CLIP_PROTOCOL = InputProtocol(
    224,
    "bicubic_antialias",
    mean=(0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255),
    std=(0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255),
)
DINOV2_PROTOCOL = InputProtocol(
    224, "bicubic_antialias", IMAGENET_PROTOCOL_224.mean, IMAGENET_PROTOCOL_224.std
)


def _load_torchscript(path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").float()


class VGG16Backbone(Backbone):
    """torchvision VGG16: "pool" = fc2 after ReLU [N, 4096], "logits" [N, 1000]."""

    def __init__(self, state_dict: dict[str, torch.Tensor], weights_id: str):
        super().__init__()
        network = torchvision.models.vgg16(weights=None)
        network.load_state_dict(state_dict)
        self.features, self.avgpool = network.features, network.avgpool
        self.fc_layers = network.classifier[:5]
        self.classifier_out = network.classifier[6]
        self.protocol = IMAGENET_PROTOCOL_224
        self.weights_id = weights_id
        self.feature_dims = {"pool": 4096, "logits": 1000}

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pool = self.fc_layers(torch.flatten(self.avgpool(self.features(x)), 1))
        return {"pool": pool, "logits": self.classifier_out(pool)}


class TorchScriptEmbedder(Backbone):
    """A user-supplied TorchScript image encoder: "pool" [N, dim] = encode(x)."""

    def __init__(self, module: nn.Module, method: str, dim: int, protocol: InputProtocol, weights_id: str):
        super().__init__()
        self.module, self.method = module, method
        self.protocol = protocol
        self.weights_id = weights_id
        self.feature_dims = {"pool": dim}

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pool": getattr(self.module, self.method)(x)}


@register_backbone("vgg16")
def vgg16(weights: str | None = None, seed: int = 0) -> VGG16Backbone:
    path = resolve_weights("vgg16", VGG16_WEIGHTS, weights)
    return VGG16Backbone(torch.load(str(path), map_location="cpu", weights_only=True), file_sha256(path))


@register_backbone("clip")
def clip(weights: str | None = None, seed: int = 0) -> TorchScriptEmbedder:
    path = resolve_weights("clip", CLIP_WEIGHTS, weights)
    return TorchScriptEmbedder(_load_torchscript(path), "encode_image", 768, CLIP_PROTOCOL, file_sha256(path))


@register_backbone("dinov2")
def dinov2(weights: str | None = None, seed: int = 0) -> TorchScriptEmbedder:
    path = resolve_weights("dinov2", DINOV2_WEIGHTS, weights)
    return TorchScriptEmbedder(_load_torchscript(path), "forward", 1024, DINOV2_PROTOCOL, file_sha256(path))
