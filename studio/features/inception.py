"""Inception-v3 as in the TensorFlow 2015-12-05 graph used by FID and Inception Score.

Differs from torchvision's ImageNet Inception-v3 in the ways the TF graph does: batch norm without a
learned scale (eps 1e-3), average pools that exclude padding from the count, a max pool (not an
average pool) in the pooling branch of the last block, and a 1008-way classifier. Module names follow
the TF-slim layer names (as torchvision does), so the standard `pt_inception-2015-12-05` state dict maps
one-to-one; `studio.features.inception_weights` maps the other layouts onto these names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POOL_DIM = 2048
NUM_LOGITS = 1008
INPUT_SIZE = 299


class ConvBN(nn.Module):
    """Conv (no bias) -> batch norm (eps 1e-3, eval statistics) -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int | tuple[int, int], stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return F.relu(self.bn(self.conv(x)))
        # Frozen statistics: the batch norm folds into the convolution's weights and bias, one pass
        # less over every activation (outputs differ by float rounding only).
        bn = self.bn
        scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
        weight = self.conv.weight * scale.view(-1, 1, 1, 1)
        bias = bn.bias - bn.running_mean * scale
        return F.relu(F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding), inplace=True)


def _avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    # TF's SAME average pool divides by the number of real (unpadded) pixels.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class Block35(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | avgpool->1x1."""

    def __init__(self, in_ch: int, pool_ch: int):
        super().__init__()
        self.branch1x1 = ConvBN(in_ch, 64, 1)
        self.branch5x5_1 = ConvBN(in_ch, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(in_ch, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(in_ch, pool_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_3x3(x)),
            ],
            dim=1,
        )


class Reduction35to17(nn.Module):
    """Grid reduction 35->17 (Mixed_6a): 3x3/2 | 1x1->3x3->3x3/2 | maxpool/2."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.branch3x3 = ConvBN(in_ch, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(in_ch, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            dim=1,
        )


class Block17(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..e); `mid` is the bottleneck width."""

    def __init__(self, in_ch: int, mid: int):
        super().__init__()
        row, col = (1, 7), (7, 1)
        row_pad, col_pad = (0, 3), (3, 0)
        self.branch1x1 = ConvBN(in_ch, 192, 1)
        self.branch7x7_1 = ConvBN(in_ch, mid, 1)
        self.branch7x7_2 = ConvBN(mid, mid, row, padding=row_pad)
        self.branch7x7_3 = ConvBN(mid, 192, col, padding=col_pad)
        self.branch7x7dbl_1 = ConvBN(in_ch, mid, 1)
        self.branch7x7dbl_2 = ConvBN(mid, mid, col, padding=col_pad)
        self.branch7x7dbl_3 = ConvBN(mid, mid, row, padding=row_pad)
        self.branch7x7dbl_4 = ConvBN(mid, mid, col, padding=col_pad)
        self.branch7x7dbl_5 = ConvBN(mid, 192, row, padding=row_pad)
        self.branch_pool = ConvBN(in_ch, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(_avg_pool_3x3(x))], dim=1)


class Reduction17to8(nn.Module):
    """Grid reduction 17->8 (Mixed_7a): 1x1->3x3/2 | 1x1->1x7->7x1->3x3/2 | maxpool/2."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(in_ch, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(in_ch, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tower = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            tower = layer(tower)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), tower, F.max_pool2d(x, 3, stride=2)], dim=1)


class Block8(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (Mixed_7b/c).

    `max_pool_branch`: the TF graph's last block (Mixed_7c) pools with a max instead of an average.
    """

    def __init__(self, in_ch: int, max_pool_branch: bool):
        super().__init__()
        self.max_pool_branch = max_pool_branch
        self.branch1x1 = ConvBN(in_ch, 320, 1)
        self.branch3x3_1 = ConvBN(in_ch, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(in_ch, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(in_ch, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool_branch else _avg_pool_3x3(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(single),
                self.branch3x3_2b(single),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                self.branch_pool(pooled),
            ],
            dim=1,
        )


class InceptionV3FID(nn.Module):
    """The FID Inception-v3 network body.

    forward(x): x is [N, 3, 299, 299] float in the TF range [-1, 1) ((uint8 - 128) / 128).
    Returns {"pool": [N, 2048]} and, when built `with_logits`, {"logits": [N, 1008]}: the classifier
    WITHOUT its bias, as the original Inception Score code (and NVlabs/torch-fidelity after it) computes it.
    """

    def __init__(self, with_logits: bool = True):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = Block35(192, pool_ch=32)
        self.Mixed_5c = Block35(256, pool_ch=64)
        self.Mixed_5d = Block35(288, pool_ch=64)
        self.Mixed_6a = Reduction35to17(288)
        self.Mixed_6b = Block17(768, mid=128)
        self.Mixed_6c = Block17(768, mid=160)
        self.Mixed_6d = Block17(768, mid=160)
        self.Mixed_6e = Block17(768, mid=192)
        self.Mixed_7a = Reduction17to8(768)
        self.Mixed_7b = Block8(1280, max_pool_branch=False)
        self.Mixed_7c = Block8(2048, max_pool_branch=True)
        self.fc = nn.Linear(POOL_DIM, NUM_LOGITS) if with_logits else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b):
            x = block(x)
        for block in (
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        pool = x.mean(dim=(2, 3))
        outputs = {"pool": pool}
        if self.fc is not None:
            outputs["logits"] = F.linear(pool, self.fc.weight)
        return outputs
