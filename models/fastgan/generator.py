"""FastGAN generator (Liu et al. 2021) in the configuration Projected GAN trains ("fastgan", "fastgan_lite").

z [N, z_dim] -> 4x4 init layer -> one up-block per resolution 8, 16, ..., img_resolution -> 3x3 conv
to img_channels -> tanh (FastGAN's output; Projected GAN's copy leaves the output unbounded).
Widths: ngf x CHANNEL_MULTIPLIERS[resolution] (FastGAN's table; Projected GAN uses ngf = 128 and
z_dim = 256). Skip-layer excitations gate the features at 64, 128, 256 and 512 with those at 4, 8, 16
and 32 (SLE_SOURCES), where both ends exist. lite=False uses the big up-block (two convs with noise
injection) at every resolution, lite=True the small one (one conv, no noise).

FastGAN has no mapping network; to fit studio's StyleGAN interface, `mapping` returns the (normalised)
latent itself as a single w (num_ws = 1, w_dim = z_dim), and `synthesis` is the network.
"""

import math

import torch
from torch import nn

from models.fastgan.layers import FullUpBlock, InitialBlock, LiteUpBlock, SkipLayerExcitation, sn_conv2d
from models.registry import register_network
from models.stylegan2.layers import normalize_2nd_moment
from models.stylegan2.synthesis import NoiseMode, check_synthesis_input

# Channels per resolution = ngf x multiplier: FastGAN's `nfc_multi` table (odegeasslbc/FastGAN-pytorch
# models.py, default ngf 64), used unchanged by Projected GAN (pg_modules/networks_fastgan.py, ngf 128).
CHANNEL_MULTIPLIERS: dict[int, float] = {
    4: 16,
    8: 8,
    16: 4,
    32: 2,
    64: 2,
    128: 1,
    256: 0.5,
    512: 0.25,
    1024: 0.125,
}
# Skip-layer excitation: target resolution -> the resolution whose features gate it (16x apart).
# Published FastGAN and Projected GAN generators: 4->64, 8->128, 16->256, 32->512 (none into 1024).
SLE_SOURCES: dict[int, int] = {64: 4, 128: 8, 256: 16, 512: 32}
MIN_RESOLUTION = 16
MAX_RESOLUTION = 1024


def channels_at(resolution: int, ngf: int) -> int:
    """Feature channels of the generator at `resolution` (4 .. 1024) for base width ngf."""
    return int(CHANNEL_MULTIPLIERS[resolution] * ngf)


class LatentMapping(nn.Module):
    """z [N, z_dim], c [N, c_dim] or None -> ws [N, 1, z_dim]: no network, only the latent.

    ws = e(c) + psi * normalize_2nd_moment(z). z is normalised to unit second moment (as Projected GAN
    does) before truncation so that psi keeps its meaning. Conditioning (c_dim > 0): e(c) = c @ E with a
    learned embedding table E [c_dim, z_dim] (initialised N(0, 1), the scale of the normalised z), i.e.
    one learned vector per class for one-hot c, added to the latent. Adding (rather than concatenating)
    keeps w_dim = z_dim and the synthesis network identical to the unconditional one (same layers, same
    state_dict keys). The first synthesis layer is linear in w, so the label acts as a learned
    class-dependent offset of its output (restricted to that layer's z_dim-dimensional range, where
    concatenation would give the label its own weights), renormalised by the BatchNorm that follows.

    Truncation is StyleGAN's `w_avg + psi * (w - w_avg)` with the latent mean of the class as w_avg:
    e(c), or 0 unconditionally (z has mean 0, so there is no average to track: update_emas is accepted
    for interface compatibility and does nothing). psi = 0 gives every z the same w. With num_ws = 1,
    truncation_cutoff None or >= 1 truncates the single w and 0 leaves it alone.
    """

    def __init__(self, z_dim: int, c_dim: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.embed = None
        if c_dim > 0:
            self.embed = nn.Linear(c_dim, z_dim, bias=False)
            nn.init.normal_(self.embed.weight)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {None if z is None else list(z.shape)}")
        w = normalize_2nd_moment(z if z.is_floating_point() else z.float())
        if truncation_psi != 1 and (truncation_cutoff is None or truncation_cutoff >= 1):
            w = w * truncation_psi
        if self.embed is None:
            if c is not None and (c.ndim != 2 or c.shape != (z.shape[0], 0)):
                raise ValueError(f"c must be None or [N, 0] (c_dim is 0), got {list(c.shape)}")
        else:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"c must be [N, {self.c_dim}], got {None if c is None else list(c.shape)}")
            if c.shape[0] != z.shape[0]:
                raise ValueError(f"c has {c.shape[0]} rows but z has {z.shape[0]}; they must match")
            w = w + self.embed(c.to(self.embed.weight.dtype))
        return w.unsqueeze(1)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}"


class FastGANSynthesisNetwork(nn.Module):
    """ws [N, 1, w_dim] -> image [N, img_channels, img_resolution, img_resolution] in [-1, 1] (tanh).

    Blocks live in `blocks[str(resolution)]` and excitations in `sle[str(target_resolution)]`. Output is
    deterministic given ws in eval mode with noise_mode "const" or "none"; in train mode BatchNorm uses
    the batch's statistics (and updates its running ones) and the spectral norms take a power-iteration
    step per call, whatever update_emas says (accepted for interface compatibility).
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, ngf: int, lite: bool) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = 1
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.lite = lite
        self.resolutions = [2**i for i in range(3, img_resolution.bit_length())]  # 8 .. img_resolution
        self.init = InitialBlock(w_dim, channels_at(4, ngf))
        self.blocks = nn.ModuleDict()
        for res in self.resolutions:
            cin, cout = channels_at(res // 2, ngf), channels_at(res, ngf)
            # Noise seeds: distinct per layer and fixed by the architecture, so "const" noise is the same
            # in every process and for every G built with these arguments.
            block = LiteUpBlock(cin, cout) if lite else FullUpBlock(cin, cout, res, seed=2 * res)
            self.blocks[str(res)] = block
        self.sle = nn.ModuleDict(
            {
                str(target): SkipLayerExcitation(channels_at(source, ngf), channels_at(target, ngf))
                for target, source in SLE_SOURCES.items()
                if target <= img_resolution
            }
        )
        # The output conv has a bias (no BatchNorm follows it), as in Projected GAN's generator.
        self.to_rgb = sn_conv2d(channels_at(img_resolution, ngf), img_channels, 3, padding=1, bias=True)

    def forward(
        self, ws: torch.Tensor, update_emas: bool = False, noise_mode: NoiseMode = "random"
    ) -> torch.Tensor:
        check_synthesis_input(ws, self.num_ws, self.w_dim, noise_mode)
        x = self.init(ws[:, 0].to(self.init.norm.weight.dtype))
        sources = set(SLE_SOURCES.values())
        feats = {4: x}  # the low-resolution features later excitations read
        for res in self.resolutions:
            x = self.blocks[str(res)](x, noise_mode)
            if str(res) in self.sle:
                x = self.sle[str(res)](feats[SLE_SOURCES[res]], x)
            if res in sources:
                feats[res] = x
        return torch.tanh(self.to_rgb(x))

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, img_resolution={self.img_resolution}, lite={self.lite}"


@register_network("fastgan-generator", version=1)
class Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] or None -> image [N, img_channels, img_resolution, img_resolution] in
    [-1, 1].

    img_resolution: a power of two in [16, 1024]. ngf: base width (channels at 128x128; Projected GAN's
    128, FastGAN's 64). lite: small up-blocks everywhere (Projected GAN's "fastgan_lite"). Same calling
    convention as the StyleGAN generators: forward = synthesis(mapping(z, c, psi, cutoff), noise_mode),
    with w_dim = z_dim and num_ws = 1 (see LatentMapping for conditioning and truncation).
    """

    def __init__(
        self,
        z_dim: int = 256,
        c_dim: int = 0,
        img_resolution: int = 256,
        img_channels: int = 3,
        ngf: int = 128,
        lite: bool = False,
    ) -> None:
        super().__init__()
        if not _is_int(img_resolution) or img_resolution not in CHANNEL_MULTIPLIERS or img_resolution < 16:
            raise ValueError(
                f"img_resolution must be a power of two in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], "
                f"got {img_resolution!r}"
            )
        for name, value, low in (("z_dim", z_dim, 1), ("c_dim", c_dim, 0), ("img_channels", img_channels, 1)):
            if not _is_int(value) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not _is_int(ngf) or channels_at(img_resolution, ngf) < 1:
            # The narrowest layer is at img_resolution (multiplier 1/8 at 1024x1024).
            least = math.ceil(1 / CHANNEL_MULTIPLIERS[img_resolution])
            raise ValueError(
                f"ngf must be an integer >= {least} at img_resolution {img_resolution}, got {ngf!r}"
            )
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = z_dim
        self.num_ws = 1
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.ngf = ngf
        self.lite = bool(lite)
        self.mapping = LatentMapping(z_dim, c_dim)
        self.synthesis = FastGANSynthesisNetwork(z_dim, img_resolution, img_channels, ngf, self.lite)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        noise_mode: NoiseMode = "random",
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, noise_mode=noise_mode)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
