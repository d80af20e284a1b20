"""Projected GAN discriminator (Sauer et al. 2021): image [N, C, R, R] (+ label c) -> logits [N, L]."""

import torch
from torch import nn

from models.projected.feature_network import FeatureNetwork
from models.projected.heads import Head
from models.projected.projection import RandomProjection
from models.registry import register_network
from models.stylegan2.discriminator import check_images

BACKBONE_MIN_RESOLUTION = 224  # smaller images are upsampled to the ImageNet size the backbone knows


@register_network("projected-discriminator", version=1)
class ProjectedDiscriminator(nn.Module):
    """Discriminates in the feature space of a frozen pretrained network.

    The image is resized to `backbone_resolution` (None: 224 for images below 224², as published, else
    their own resolution) and embedded by the backbone (`FeatureNetwork`:
    "efficientnet_lite0" or "timm:<name>") at strides 4, 8, 16 and 32; a fixed random projection
    (`projection`: "none", "ccm" or "ccm_csm", seeded by `projection_seed`) mixes the four maps across
    channels and scales, and one trained head per map gives a logit map (`Head`). The output is the
    heads' logits concatenated, [N, L]: a loss averages over them as over a batch. The backbone and the
    projection never train (`FrozenModule`); their pretrained weights are loaded by the training code
    (studio.features.pretrained), so a checkpoint holds them like the rest of D's state.
    c_dim > 0: each head projects onto an embedding of the one-hot label (cmap_dim channels).
    separable_heads: depthwise-separable down-sampling convolutions in the heads (Projected GAN's choice
    with StyleGAN2's generator).
    """

    def __init__(
        self,
        c_dim: int = 0,
        img_resolution: int = 256,
        img_channels: int = 3,
        backbone: str = "efficientnet_lite0",
        backbone_resolution: int | None = None,
        projection: str = "ccm_csm",
        projection_width: int = 64,
        projection_seed: int = 0,
        head_end_size: int = 8,
        cmap_dim: int = 64,
        separable_heads: bool = False,
    ) -> None:
        super().__init__()
        if img_channels != 3:
            raise ValueError(
                f"the pretrained backbone takes RGB images: img_channels must be 3, got {img_channels}"
            )
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        if backbone_resolution is None:
            backbone_resolution = max(img_resolution, BACKBONE_MIN_RESOLUTION)
        self.feature_network = FeatureNetwork(backbone, backbone_resolution)
        self.projection = RandomProjection(
            self.feature_network.channels, projection, projection_width, projection_seed
        )
        with torch.no_grad():
            probe = torch.zeros(1, img_channels, backbone_resolution, backbone_resolution)
            sizes = [f.shape[-1] for f in self.feature_network(probe)]
        self.heads = nn.ModuleList(
            Head(channels, size, head_end_size, c_dim, cmap_dim, separable_heads)
            for channels, size in zip(self.projection.out_channels, sizes, strict=True)
        )

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, update_emas: bool = False
    ) -> torch.Tensor:
        """update_emas is accepted for interface compatibility with the StyleGAN discriminators."""
        check_images(img, self.img_channels, self.img_resolution)
        if self.c_dim > 0 and (c is None or tuple(c.shape) != (img.shape[0], self.c_dim)):
            shape = None if c is None else list(c.shape)
            raise ValueError(f"c must be [N, {self.c_dim}] (one-hot labels), got {shape}")
        features = self.projection(self.feature_network(img))
        return torch.cat([head(x, c) for head, x in zip(self.heads, features, strict=True)], dim=1)
