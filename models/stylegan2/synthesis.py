"""StyleGAN2 synthesis network: ws [N, num_ws, w_dim] -> image [N, img_channels, R, R].

A learned 4x4 constant is refined by one block per resolution 4, 8, ..., R. Each block holds two
modulated 3x3 convs (the first upsampling 2x, except at 4x4), per-pixel noise with a learned strength,
and a ToRGB layer whose output is added to the 2x-upsampled image of the previous block ("skip" generator).
"""

import math
from typing import Literal

import torch
from torch import nn

import ops
from models.stylegan2.architecture import (
    block_resolutions,
    channels_at,
    compute_dtype,
    resolve_conv_clamp,
    uses_fp16,
)
from models.stylegan2.layers import DEFAULT_RESAMPLE_FILTER, FullyConnected
from models.stylegan2.modconv import modulated_conv2d

NoiseMode = Literal["random", "const", "none"]
NOISE_MODES = ("random", "const", "none")


def check_synthesis_input(ws: torch.Tensor, num_ws: int, w_dim: int, noise_mode: str | None = None) -> None:
    """ValueError unless ws is [N, num_ws, w_dim] and noise_mode (when given) one of NOISE_MODES."""
    if ws.ndim != 3 or ws.shape[1:] != (num_ws, w_dim):
        raise ValueError(f"ws must be [N, {num_ws}, {w_dim}] (N, num_ws, w_dim), got {list(ws.shape)}")
    if noise_mode is not None and noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + noise + bias + lrelu.

    x [N, in_channels, H, W], w [N, w_dim] -> [N, out_channels, resolution, resolution].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: int = 1,
        kernel_size: int = 3,
        conv_clamp: float | None = None,
        resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        # Stored N(0,1): the equalized-lr gain 1/sqrt(fan_in) is a constant that demodulation cancels.
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", ops.setup_filter(list(resample_filter)), persistent=False)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "random", fused_modconv: bool = True
    ) -> torch.Tensor:
        noise = None
        if noise_mode == "random":
            shape = (x.shape[0], 1, self.resolution, self.resolution)
            noise = torch.randn(shape, device=x.device, dtype=x.dtype) * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            noise = self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
        x = modulated_conv2d(
            x,
            self.weight,
            self.affine(w),
            up=self.up,
            resample_filter=self.resample_filter,
            fused=fused_modconv,
            noise=noise,
        )
        return ops.bias_act(x, self.bias.to(x.dtype), act="lrelu", clamp=self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, plus bias.

    x [N, in_channels, H, W], w [N, w_dim] -> [N, img_channels, H, W].
    """

    def __init__(
        self, in_channels: int, img_channels: int, w_dim: int, conv_clamp: float | None = None
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused_modconv)
        return ops.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network.

    forward(x [N, in_channels, R/2, R/2] or None at 4x4, img [N, img_channels, R/2, R/2] or None,
    ws [N, num_conv + 1, w_dim]) -> (x [N, out_channels, R, R], img [N, img_channels, R, R] in ws.dtype).
    The ToRGB style ws[:, -1] is the next block's first conv style (the network passes overlapping slices).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        use_fp16: bool = False,
        conv_clamp: float | None = None,
        resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.use_fp16 = use_fp16
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.conv0 = None
        else:
            self.const = None
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim,
                resolution,
                up=2,
                conv_clamp=conv_clamp,
                resample_filter=resample_filter,
            )
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if self.conv0 is None else 2
        self.register_buffer("resample_filter", ops.setup_filter(list(resample_filter)), persistent=False)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: NoiseMode = "random",
        fused_modconv: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = compute_dtype(self.use_fp16, ws.device, self.conv1.weight.dtype)
        if self.conv0 is None:
            x = self.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x.to(dtype), ws[:, 0], noise_mode, fused_modconv)
        x = self.conv1(x, ws[:, self.num_conv - 1], noise_mode, fused_modconv)
        y = self.torgb(x, ws[:, self.num_conv], fused_modconv).to(ws.dtype)
        img = y if img is None else ops.upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution] (about [-1, 1]).

    channels at resolution r: min(channel_base // r, channel_max). The top `num_fp16_res` resolutions
    run in fp16 on CUDA. fused_modconv: True = grouped conv, False = per-sample scaling, None = choose
    per call (see `use_fused_modconv`).
    """

    def __init__(
        self,
        w_dim: int = 512,
        img_resolution: int = 256,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | str | None = "auto",
        fused_modconv: bool | None = None,
        resample_filter: tuple[float, ...] = DEFAULT_RESAMPLE_FILTER,
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.fused_modconv = fused_modconv
        self.resolutions = block_resolutions(img_resolution)
        clamp = resolve_conv_clamp(conv_clamp, num_fp16_res)
        self.blocks = nn.ModuleList()
        in_channels = 0
        for res in self.resolutions:
            out_channels = channels_at(res, channel_base, channel_max)
            self.blocks.append(
                SynthesisBlock(
                    in_channels,
                    out_channels,
                    w_dim,
                    res,
                    img_channels,
                    use_fp16=uses_fp16(res, img_resolution, num_fp16_res),
                    conv_clamp=clamp,
                    resample_filter=resample_filter,
                )
            )
            in_channels = out_channels
        self.num_ws = sum(block.num_conv for block in self.blocks) + 1

    def use_fused_modconv(self, ws: torch.Tensor) -> bool:
        """Fused (grouped) modconv unless training with a batch > 1: the per-sample-scaling path has the
        cheaper weight gradient, and on CPU it is also faster in inference for batches > 1."""
        if self.fused_modconv is not None:
            return self.fused_modconv
        return ws.shape[0] == 1

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: NoiseMode = "random",
        update_emas: bool = False,
        fused_modconv: bool | None = None,
    ) -> torch.Tensor:
        """update_emas is accepted for interface compatibility; StyleGAN2 synthesis tracks no statistics."""
        check_synthesis_input(ws, self.num_ws, self.w_dim, noise_mode)
        fused = self.use_fused_modconv(ws) if fused_modconv is None else fused_modconv
        x = img = None
        w_index = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, w_index : w_index + block.num_conv + 1], noise_mode, fused)
            w_index += block.num_conv
        return img
