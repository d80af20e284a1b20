"""Building blocks of the FastGAN generator (Liu et al. 2021), written from the paper's description;
widths and layer order checked against the published generators' documented configuration.

Every convolution is spectrally normalised (torch's parametrization: the stored weight is divided by
its largest singular value, estimated by one power iteration per training-mode forward and frozen in
eval mode), as in the published generator. Activations are GLUs: a conv produces 2C channels and the
GLU gates the first C with the sigmoid of the other C. Normalisation is BatchNorm (batch statistics in
train mode, running statistics in eval mode, e.g. for G_ema).
"""

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.stylegan2.synthesis import NoiseMode


def sn_conv2d(
    in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, bias: bool = False
) -> nn.Conv2d:
    """Spectrally normalised stride-1 Conv2d. Convs followed by BatchNorm have no bias (BN's shift
    makes it redundant), which is why bias defaults to False."""
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=bias))


class NoiseInput(nn.Module):
    """x [N, C, R, R] -> x + strength * noise with noise [N or 1, 1, R, R] and a learned scalar strength.

    The strength starts at 0 (FastGAN's choice: noise is off until training turns it on). noise_mode
    "random" draws fresh N(0, 1) noise per sample and call; "const" uses the buffer `noise_const` [R, R],
    drawn once from `seed` with a private generator (so it does not depend on, or disturb, the global
    RNG) and saved in checkpoints, which makes generation deterministic given the latent; "none" adds
    nothing.
    """

    def __init__(self, resolution: int, seed: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.strength = nn.Parameter(torch.zeros([]))
        # Drawn on the CPU (whatever the default device) so that the values depend on the seed alone.
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(resolution, resolution, generator=generator, device="cpu")
        self.register_buffer("noise_const", noise)

    def forward(self, x: torch.Tensor, noise_mode: NoiseMode = "random") -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        return x + self.strength.to(x.dtype) * noise

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class InitialBlock(nn.Module):
    """w [N, w_dim] -> [N, channels, 4, 4]: a 4x4 transposed conv of the latent seen as a 1x1 image
    (equivalently a linear layer to 4 * 4 * 2 * channels values), BatchNorm, GLU."""

    def __init__(self, w_dim: int, channels: int) -> None:
        super().__init__()
        self.conv = spectral_norm(nn.ConvTranspose2d(w_dim, 2 * channels, kernel_size=4, bias=False))
        self.norm = nn.BatchNorm2d(2 * channels)
        self.act = nn.GLU(dim=1)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(w[:, :, None, None])))


class LiteUpBlock(nn.Module):
    """x [N, in_channels, R/2, R/2] -> [N, out_channels, R, R]: nearest 2x upsampling, 3x3 conv,
    BatchNorm, GLU. No noise; `noise_mode` is accepted so that both block kinds are called alike."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = sn_conv2d(in_channels, 2 * out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(2 * out_channels)
        self.act = nn.GLU(dim=1)

    def forward(self, x: torch.Tensor, noise_mode: NoiseMode = "random") -> torch.Tensor:
        return self.act(self.norm(self.conv(self.up(x))))


class FullUpBlock(nn.Module):
    """x [N, in_channels, R/2, R/2] -> [N, out_channels, R, R]: nearest 2x upsampling, then twice
    (3x3 conv, noise injection, BatchNorm, GLU). Noise goes in before the BatchNorm, as in FastGAN."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, seed: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv1 = sn_conv2d(in_channels, 2 * out_channels, 3, padding=1)
        self.noise1 = NoiseInput(resolution, seed)
        self.norm1 = nn.BatchNorm2d(2 * out_channels)
        self.conv2 = sn_conv2d(out_channels, 2 * out_channels, 3, padding=1)
        self.noise2 = NoiseInput(resolution, seed + 1)
        self.norm2 = nn.BatchNorm2d(2 * out_channels)
        self.act = nn.GLU(dim=1)

    def forward(self, x: torch.Tensor, noise_mode: NoiseMode = "random") -> torch.Tensor:
        x = self.act(self.norm1(self.noise1(self.conv1(self.up(x)), noise_mode)))
        return self.act(self.norm2(self.noise2(self.conv2(x), noise_mode)))


class SkipLayerExcitation(nn.Module):
    """Skip-layer excitation: (small [N, small_channels, r, r], big [N, big_channels, R, R]) -> big * gate.

    The gate [N, big_channels, 1, 1] in (0, 1) is computed from the low-resolution features alone:
    average-pool to 4x4, a 4x4 conv to 1x1 (a per-sample channel vector), Swish, a 1x1 conv, sigmoid.
    It rescales the channels of the high-resolution features (a channel-wise multiplication, not an
    addition, so the two resolutions need no spatial alignment); the paper credits it with a shortcut
    for the gradient and with disentangling content (low-res) from style (high-res).
    """

    def __init__(self, small_channels: int, big_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv1 = sn_conv2d(small_channels, big_channels, 4)
        self.act = nn.SiLU()
        self.conv2 = sn_conv2d(big_channels, big_channels, 1)

    def forward(self, small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.conv2(self.act(self.conv1(self.pool(small)))))
        return big * gate
