"""Building blocks shared by the StyleGAN2 generator and discriminator.

Every learned weight uses the equalized learning rate of Karras et al.: it is stored as N(0, 1) /
lr_multiplier and multiplied at run time by lr_multiplier / sqrt(fan_in), so that Adam's per-parameter
step sizes act equally on all layers.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

import ops

DEFAULT_RESAMPLE_FILTER = (1, 3, 3, 1)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x**2) + eps) along `dim` (the pixel/vector norm of ProGAN and StyleGAN)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnected(nn.Module):
    """Equalized-learning-rate linear layer with optional bias_act activation.

    x [N, in_features] -> [N, out_features]. With lr_multiplier m, the weight is stored as N(0,1)/m and
    the bias as bias_init/m, so the effective values at initialisation are N(0,1)/sqrt(fan_in) and
    bias_init, and their effective learning rates are m times the optimizer's.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], bias_init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return F.linear(x, w, b)
        return ops.bias_act(x @ w.t(), b, act=self.activation)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"
        )


def conv2d_up2(x: torch.Tensor, weight: torch.Tensor, fir: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """Convolution at twice the input resolution: stride-2 transposed conv, then the FIR filter.

    x [N, groups*in, H, W], weight [groups*out, in, k, k] (a conv2d weight) -> [N, groups*out, 2H, 2W].
    The weight is flipped so that the transposed conv equals conv2d(zero-inserted x, weight); the
    filter (gain 4 = up**2 keeps the mean) then removes the zero-insertion images. No intermediate crop:
    the transposed conv output (2H+k-2) is cropped only once, by the filter's padding.
    """
    out_channels, in_per_group, k, _ = weight.shape
    w = weight.flip([2, 3]).reshape(groups, out_channels // groups, in_per_group, k, k)
    w = w.transpose(1, 2).reshape(groups * in_per_group, out_channels // groups, k, k)
    x = F.conv_transpose2d(x, w, stride=2, groups=groups)
    total = fir.shape[-1] - k + 1  # transposed conv gives 2H+k-2 samples; the filter brings them to 2H
    pad0, pad1 = total // 2, total - total // 2
    return ops.upfirdn2d(x, fir, padding=[pad0, pad1, pad0, pad1], gain=4)


def conv2d_down2(x: torch.Tensor, weight: torch.Tensor, fir: torch.Tensor) -> torch.Tensor:
    """Convolution to half the input resolution: FIR filter, then a stride-2 conv.

    x [N, in, H, W], weight [out, in, k, k] -> [N, out, H/2, W/2]. For k == 1 this is downsample2d
    followed by a 1x1 conv.
    """
    k = weight.shape[-1]
    if k == 1:
        return F.conv2d(ops.downsample2d(x, fir, down=2), weight)
    total = fir.shape[-1] + k - 3  # filtered length H+total-f+1, strided conv with k taps gives H/2
    pad0, pad1 = total // 2, total - total // 2
    x = ops.upfirdn2d(x, fir, padding=[pad0, pad1, pad0, pad1])
    return F.conv2d(x, weight, stride=2)


class Conv2dLayer(nn.Module):
    """Equalized-learning-rate conv with optional FIR downsampling, bias and activation (discriminator).

    x [N, in_channels, H, W] -> [N, out_channels, H/down, W/down]. `gain` multiplies the output (after
    the activation's own gain); `conv_clamp` clips the output to +-conv_clamp*gain.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        gain: float = 1.0,
        conv_clamp: float | None = None,
        resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER,
    ) -> None:
        super().__init__()
        if down not in (1, 2):
            raise ValueError(f"Conv2dLayer supports down=1 or down=2, got {down}")
        self.activation = activation
        self.down = down
        self.gain = gain
        self.conv_clamp = conv_clamp
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", ops.setup_filter(list(resample_filter)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        if self.down == 2:
            x = conv2d_down2(x, w, self.resample_filter)
        else:
            x = F.conv2d(x, w, padding=w.shape[-1] // 2)
        act_gain = ops.ACTIVATIONS[self.activation].default_gain * self.gain
        clamp = None if self.conv_clamp is None else self.conv_clamp * self.gain
        b = None if self.bias is None else self.bias.to(x.dtype)
        if b is None and act_gain == 1.0 and clamp is None and self.activation == "linear":
            return x
        return ops.bias_act(x, b, act=self.activation, gain=act_gain, clamp=clamp)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (ProGAN): appends per-group feature std as extra channels.

    x [N, C, H, W] -> [N, C + num_channels, H, W]. Samples n and n + N/G*j (j < G) form one group of
    G = min(group_size, N); the C channels are split into num_channels chunks, and each chunk's std over
    the group, averaged over its channels and pixels, becomes one constant feature map.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def group_for(self, n: int) -> int:
        """G = min(group_size, n) for a batch of n samples; ValueError unless G divides n."""
        g = min(self.group_size, n)
        if n % g != 0:
            raise ValueError(
                f"minibatch stddev: batch size {n} is not divisible by the group size {g}; "
                f"use a batch per forward pass (per device, or train.batch_gpu) that is a multiple of "
                f"mbstd_group_size={self.group_size}"
            )
        return g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.group_for(n)
        f = self.num_channels
        y = x.reshape(g, n // g, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [N/G, F]
        y = y.to(x.dtype).reshape(1, n // g, f, 1, 1).expand(g, -1, -1, h, w).reshape(n, f, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
