"""Fixed random projections of backbone features (Sauer et al. 2021, "Projected GANs Converge Faster", 3.2).

Cross-Channel Mixing (CCM) maps each stage's features through a random 1x1 convolution; Cross-Scale
Mixing (CSM) then fuses the stages top-down, U-Net style: from the deepest stage up, the fused deeper map
is reduced to the shallower stage's channels (1x1), upsampled bilinearly to its size, added, and mixed
by a random 3x3 convolution. Both are drawn once from a seeded generator and never trained, so the
discriminator sees a fixed feature space in which the deeper layers' features are spread over more
channels and scales than the backbone's own.
"""

import torch
import torch.nn.functional as F
from torch import nn

from models.projected.frozen import FrozenModule

PROJECTIONS = ("none", "ccm", "ccm_csm")


def _seeded_conv(in_channels: int, out_channels: int, kernel: int, generator: torch.Generator) -> nn.Conv2d:
    """A Conv2d with PyTorch's default init (Kaiming uniform, a = sqrt(5)) drawn from `generator`."""
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=True)
    fan_in = in_channels * kernel * kernel
    bound = 1 / fan_in**0.5
    with torch.no_grad():
        conv.weight.uniform_(-bound, bound, generator=generator)
        conv.bias.uniform_(-bound, bound, generator=generator)
    return conv


class RandomProjection(FrozenModule):
    """Four feature maps [N, in_channels[i], H_i, W_i] (strides 4, 8, 16, 32) -> four projected maps of
    the same sizes with `out_channels[i]` channels.

    mode: "none" (the features unchanged), "ccm" (random 1x1 per stage: width * 2**i channels) or
    "ccm_csm" (CCM, then the top-down fusion). seed: the random projection's draw.
    """

    def __init__(self, in_channels: list[int], mode: str = "ccm_csm", width: int = 64, seed: int = 0) -> None:
        super().__init__()
        if mode not in PROJECTIONS:
            raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, got {mode!r}")
        self.mode = mode
        generator = torch.Generator().manual_seed(seed)
        if mode == "none":
            self.out_channels = list(in_channels)
        else:
            self.out_channels = [width * 2**i for i in range(len(in_channels))]
        self.ccm = nn.ModuleList(
            _seeded_conv(c_in, c_out, 1, generator)
            for c_in, c_out in zip(in_channels, self.out_channels, strict=True)
            if mode != "none"
        )
        fuse = mode == "ccm_csm"
        shallower = self.out_channels[:-1]
        deeper = self.out_channels[1:]
        self.reduce = nn.ModuleList(
            _seeded_conv(c_in, c_out, 1, generator)
            for c_in, c_out in zip(deeper, shallower, strict=True)
            if fuse
        )
        self.mix = nn.ModuleList(_seeded_conv(c, c, 3, generator) for c in shallower if fuse)
        self.freeze_()

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.mode == "none":
            return list(features)
        mixed = [conv(x) for conv, x in zip(self.ccm, features, strict=True)]
        if self.mode == "ccm":
            return mixed
        fused = [mixed[-1]]
        for i in range(len(mixed) - 2, -1, -1):
            deeper = F.interpolate(
                self.reduce[i](fused[0]), size=mixed[i].shape[-2:], mode="bilinear", align_corners=False
            )
            fused.insert(0, self.mix[i](mixed[i] + deeper))
        return fused
