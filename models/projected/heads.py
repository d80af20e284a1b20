"""The discriminator heads of a Projected GAN: one per feature stage, each a small spectrally normalised
convolutional network from the stage's projected features down to a map of logits."""

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

HEAD_CHANNELS_MAX = 512


def down_block(in_channels: int, out_channels: int, separable: bool = False) -> nn.Sequential:
    """[N, in, H, W] -> [N, out, ceil(H/2), ceil(W/2)]: SN-conv 4x4 stride 2 (separable: a depthwise 4x4
    then a pointwise 1x1, both SN), BatchNorm, LeakyReLU(0.2)."""
    if separable:
        conv = [
            spectral_norm(
                nn.Conv2d(in_channels, in_channels, 4, stride=2, padding=1, groups=in_channels, bias=False)
            ),
            spectral_norm(nn.Conv2d(in_channels, out_channels, 1, bias=False)),
        ]
    else:
        conv = [spectral_norm(nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False))]
    return nn.Sequential(*conv, nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2))


class Head(nn.Module):
    """Features [N, channels, S, S] -> logits [N, L] (a flattened logit map).

    Down blocks halve the map (doubling the channels up to 512; `separable`: depthwise-separable
    convolutions, lighter, as Projected GAN uses with StyleGAN2's generator) until it is at most
    `end_size`; a final SN-conv (kernel 4, or the map's size when smaller, no padding) gives the logit
    map. With c_dim > 0 the final conv outputs cmap_dim channels and the logit is their projection onto
    an embedding of c,
    <out, embed(c)> / sqrt(cmap_dim) (Miyato & Koyama 2018, the projection discriminator).
    """

    def __init__(
        self,
        channels: int,
        size: int,
        end_size: int = 8,
        c_dim: int = 0,
        cmap_dim: int = 64,
        separable: bool = False,
    ) -> None:
        super().__init__()
        blocks = []
        while size > end_size:
            out = min(channels * 2, HEAD_CHANNELS_MAX)
            blocks.append(down_block(channels, out, separable))
            channels, size = out, math.ceil(size / 2)
        self.blocks = nn.Sequential(*blocks)
        self.c_dim = c_dim
        self.cmap_dim = cmap_dim if c_dim > 0 else 1
        kernel = min(4, size)
        self.logits = spectral_norm(nn.Conv2d(channels, self.cmap_dim, kernel, bias=False))
        self.embed = spectral_norm(nn.Linear(c_dim, cmap_dim, bias=False)) if c_dim > 0 else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        out = self.logits(self.blocks(x))
        if self.embed is not None:
            cmap = self.embed(c)[:, :, None, None]
            out = (out * cmap).sum(1, keepdim=True) / math.sqrt(self.cmap_dim)
        return out.flatten(1)
