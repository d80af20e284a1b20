"""StyleGAN2 residual discriminator: image [N, C, R, R] (+ label c) -> logits [N, 1]."""

import math
from typing import Any

import torch
from torch import nn

from models.registry import register_network
from models.stylegan2.architecture import (
    block_resolutions,
    channels_at,
    compute_dtype,
    resolve_conv_clamp,
    uses_fp16,
)
from models.stylegan2.layers import DEFAULT_RESAMPLE_FILTER, Conv2dLayer, FullyConnected, MinibatchStdDev
from models.stylegan2.mapping import MappingNetwork

RESIDUAL_GAIN = math.sqrt(0.5)  # keeps the variance of (main + skip) equal to that of each branch


def check_images(img: torch.Tensor, channels: int, resolution: int) -> None:
    """ValueError unless img is [N, channels, resolution, resolution]."""
    expected = (channels, resolution, resolution)
    if img.ndim != 4 or tuple(img.shape[1:]) != expected:
        raise ValueError(f"img must be [N, {', '.join(map(str, expected))}], got {list(img.shape)}")


class DiscriminatorBlock(nn.Module):
    """3x3 conv, 3x3 conv with 2x FIR downsampling, plus a 1x1 downsampling skip (both scaled sqrt(0.5)).

    x [N, channels, R, R] -> [N, out_channels, R/2, R/2].
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        use_fp16: bool = False,
        conv_clamp: float | None = None,
        resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER,
    ) -> None:
        super().__init__()
        self.use_fp16 = use_fp16
        self.conv0 = Conv2dLayer(channels, channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(
            channels,
            out_channels,
            3,
            activation="lrelu",
            down=2,
            gain=RESIDUAL_GAIN,
            conv_clamp=conv_clamp,
            resample_filter=resample_filter,
        )
        self.skip = Conv2dLayer(
            channels, out_channels, 1, bias=False, down=2, gain=RESIDUAL_GAIN, resample_filter=resample_filter
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(compute_dtype(self.use_fp16, x.device, self.conv0.weight.dtype))
        y = self.skip(x)
        return self.conv1(self.conv0(x)) + y


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, 3x3 conv, FC, output FC; projection onto cmap when conditional.

    x [N, channels, 4, 4], cmap [N, cmap_dim] or None -> [N, 1].
    """

    def __init__(
        self,
        channels: int,
        cmap_dim: int,
        resolution: int = 4,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(
            channels + mbstd_num_channels, channels, 3, activation="lrelu", conv_clamp=conv_clamp
        )
        self.fc = FullyConnected(channels * resolution**2, channels, activation="lrelu")
        self.out = FullyConnected(channels, max(cmap_dim, 1))

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None) -> torch.Tensor:
        x = x.to(self.conv.weight.dtype)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if cmap is None:
            return x
        return (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)


@register_network("stylegan2-discriminator", version=1)
class Discriminator(nn.Module):
    """img [N, img_channels, R, R], c [N, c_dim] -> logits [N, 1] ("resnet" StyleGAN2 discriminator).

    FromRGB (1x1 conv) at R, one DiscriminatorBlock per resolution R..8, epilogue at 4x4. With c_dim > 0,
    a MappingNetwork (z_dim=0; mapping_kwargs: num_layers, lr_multiplier, ...) maps c to cmap
    [N, cmap_dim] and the output is <features, cmap> / sqrt(cmap_dim) (projection discriminator).
    """

    def __init__(
        self,
        c_dim: int = 0,
        img_resolution: int = 256,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | str | None = "auto",
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        cmap_dim: int | None = None,
        mapping_kwargs: dict[str, Any] | None = None,
        resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER,
    ) -> None:
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        resolutions = block_resolutions(img_resolution)[::-1]

        def channels(res: int) -> int:
            return channels_at(res, channel_base, channel_max)

        clamp = resolve_conv_clamp(conv_clamp, num_fp16_res)
        self.from_rgb = Conv2dLayer(
            img_channels, channels(img_resolution), 1, activation="lrelu", conv_clamp=clamp
        )
        self.from_rgb_fp16 = uses_fp16(img_resolution, img_resolution, num_fp16_res)
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(
                channels(res),
                channels(res // 2),
                use_fp16=uses_fp16(res, img_resolution, num_fp16_res),
                conv_clamp=clamp,
                resample_filter=resample_filter,
            )
            for res in resolutions[:-1]
        )
        self.cmap_dim = 0 if c_dim == 0 else (channels(4) if cmap_dim is None else cmap_dim)
        self.mapping = (
            MappingNetwork(
                z_dim=0,
                c_dim=c_dim,
                w_dim=self.cmap_dim,
                num_ws=None,
                w_avg_beta=None,
                **dict(mapping_kwargs or {}),
            )
            if c_dim > 0
            else None
        )
        self.epilogue = DiscriminatorEpilogue(
            channels(4), self.cmap_dim, 4, mbstd_group_size, mbstd_num_channels, conv_clamp=clamp
        )

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, update_emas: bool = False
    ) -> torch.Tensor:
        """update_emas is accepted for interface compatibility; this discriminator tracks no statistics."""
        check_images(img, self.img_channels, self.img_resolution)
        x = self.from_rgb(img.to(compute_dtype(self.from_rgb_fp16, img.device, self.from_rgb.weight.dtype)))
        for block in self.blocks:
            x = block(x)
        cmap = self.mapping(None, c) if self.mapping is not None else None
        return self.epilogue(x, cmap)
