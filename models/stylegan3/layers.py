"""Layers of the StyleGAN3 synthesis network: Fourier-feature input, alias-free modulated conv layer,
ToRGB, and the running input-magnitude normalisation they share.

Positions are in units of the output image, which spans [-0.5, 0.5]^2; a feature map of `size` pixels
at sampling rate s has pixel j centred at (j + 0.5 - size / 2) / s, so its margins extend beyond it.
"""

import math

import torch
from torch import nn

import ops
from models.stylegan2.architecture import compute_dtype
from models.stylegan2.layers import FullyConnected
from models.stylegan2.modconv import modulated_conv2d
from models.stylegan2.synthesis import ToRGB as StyleGAN2ToRGB
from models.stylegan3.filters import jinc_lowpass, sinc_lowpass
from models.stylegan3.schedule import Band
from ops import filtered_lrelu

# Per-step decay of the input-magnitude EMA: half-life of 20k images at the default batch of 32.
MAGNITUDE_EMA_BETA = 0.5 ** (32 / 20_000)


class MagnitudeEMA(nn.Module):
    """x -> x / sqrt(EMA of mean(x^2)): keeps each modulated conv's input at about unit magnitude.

    Demodulation assumes unit-magnitude inputs; StyleGAN3 has no noise or skip connections that would
    otherwise keep magnitudes in check. The EMA (beta per training step) updates only with update_emas.
    """

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.beta = beta
        self.register_buffer("magnitude_ema", torch.ones([]))

    def forward(self, x: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        if update_emas:
            magnitude = x.detach().float().square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.beta))
        return x * self.magnitude_ema.rsqrt().to(x.dtype)

    def extra_repr(self) -> str:
        return f"beta={self.beta:g}"


class SynthesisInput(nn.Module):
    """w [N, w_dim] -> Fourier features [N, band.channels, band.size, band.size] in the buffers' dtype
    (float32, also in fp16 mode; float64 after `.double()`).

    Each channel c is sin(2 pi (f_c . p + phi_c)) with a fixed frequency f_c drawn uniformly from the disc
    |f| <= band.cutoff and a phase phi_c uniform in [-0.5, 0.5), followed by a learned channel mixing
    (1x1 conv, equalized lr, no bias). The features are sampled at p' = R (T p - t): T is the user
    `transform` buffer (3x3 affine, identity by default), which maps output-image coordinates to feature
    coordinates (set it to the inverse of the desired image motion); the rotation R = [[r_c, -r_s],
    [r_s, r_c]] and translation t = (t_x, t_y) come from w through an affine layer initialised to the
    identity transform, all four divided by |(r_c, r_s)|.
    """

    def __init__(self, w_dim: int, band: Band) -> None:
        super().__init__()
        self.band = band
        self.affine = FullyConnected(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.linear = FullyConnected(band.channels, band.channels, bias=False)
        radius = band.cutoff * torch.rand(band.channels).sqrt()  # sqrt: uniform density over the disc
        angle = 2 * math.pi * torch.rand(band.channels)
        self.register_buffer("freqs", torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1))
        self.register_buffer("phases", torch.rand(band.channels) - 0.5)
        self.register_buffer("transform", torch.eye(3))

    def sampling_transforms(self, w: torch.Tensor) -> torch.Tensor:
        """[N, 3, 3] affine maps from output-image coordinates to feature coordinates, R (T p - t)."""
        params = self.affine(w)  # [N, 4] = (r_c, r_s, t_x, t_y)
        rc, rs, tx, ty = (params / params[:, :2].norm(dim=1, keepdim=True)).unbind(dim=1)
        zero, one = torch.zeros_like(rc), torch.ones_like(rc)
        rotation = torch.stack([rc, -rs, zero, rs, rc, zero, zero, zero, one], dim=1).reshape(-1, 3, 3)
        translation = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).reshape(-1, 3, 3)
        return rotation @ translation @ self.transform

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        m = self.sampling_transforms(w.to(self.transform.dtype))
        # sin(2 pi (f . (A p + b) + phi)) = sin(2 pi ((f A) . p + (f . b + phi))).
        freqs = self.freqs @ m[:, :2, :2]  # [N, C, 2]
        phases = self.phases + (self.freqs @ m[:, :2, 2:]).squeeze(2)  # [N, C]
        # A user transform that scales could push frequencies past Nyquist: fade them out linearly
        # between the band's cutoff and Nyquist (a no-op for rotations and translations).
        nyquist, cutoff = self.band.sampling_rate / 2, self.band.cutoff
        amplitudes = (1 - (freqs.norm(dim=2) - cutoff) / (nyquist - cutoff)).clamp(0, 1)  # [N, C]
        size = self.band.size
        coords = (torch.arange(size, device=w.device) + 0.5 - size / 2) / self.band.sampling_rate  # [size]
        x = (
            coords[None, None, :, None] * freqs[:, None, None, :, 0]
            + coords[None, :, None, None] * freqs[:, None, None, :, 1]
            + phases[:, None, None, :]
        )  # [N, H, W, C]: x along the width, y along the height
        x = torch.sin(2 * math.pi * x) * amplitudes[:, None, None, :]
        return self.linear(x).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        b = self.band
        return f"channels={b.channels}, size={b.size}, sampling_rate={b.sampling_rate:g}, cutoff={b.cutoff:g}"


class SynthesisLayer(nn.Module):
    """x [N, band_in.channels, band_in.size, band_in.size], w [N, w_dim]
    -> [N, band_out.channels, band_out.size, band_out.size].

    A demodulated modulated conv (conv_kernel x conv_kernel, full: zero padding conv_kernel - 1, so the
    output keeps the (conv_kernel - 1) / 2 partial sums beyond each edge, as NVlabs' reference does) of
    the magnitude-normalised input at band_in's rate, then ops.filtered_lrelu: bias, up-sampling to the
    temporary rate max(s_in, s_out) * lrelu_upsampling through a low-pass at band_in's cutoff, leaky
    ReLU (x sqrt 2, clamped to +-conv_clamp), low-pass at band_out's cutoff, down-sampling to s_out, and
    the crop or pad to band_out.size. Each filter spans filter_size samples of the lower rate it
    connects (filter_size * up or filter_size * down taps); the down filter is a radial jinc when
    radial_down_filter (config R), a separable sinc otherwise.
    """

    def __init__(
        self,
        w_dim: int,
        band_in: Band,
        band_out: Band,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        radial_down_filter: bool = False,
        use_fp16: bool = False,
        conv_clamp: float | None = None,
        magnitude_ema_beta: float = MAGNITUDE_EMA_BETA,
    ) -> None:
        super().__init__()
        if conv_kernel % 2 != 1:
            raise ValueError(f"conv_kernel must be odd (centred taps), got {conv_kernel}")
        self.band_in, self.band_out = band_in, band_out
        self.use_fp16 = use_fp16
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, band_in.channels, bias_init=1)
        # Stored N(0,1): demodulation cancels any constant weight gain.
        self.weight = nn.Parameter(torch.randn(band_out.channels, band_in.channels, conv_kernel, conv_kernel))
        self.bias = nn.Parameter(torch.zeros(band_out.channels))
        self.magnitude = MagnitudeEMA(magnitude_ema_beta)

        tmp_rate = max(band_in.sampling_rate, band_out.sampling_rate) * lrelu_upsampling
        self.up = _integer_ratio(tmp_rate, band_in.sampling_rate)
        self.down = _integer_ratio(tmp_rate, band_out.sampling_rate)
        up_taps = filter_size * self.up if self.up > 1 else 1
        down_taps = filter_size * self.down if self.down > 1 else 1
        up_filter = down_filter = None
        if up_taps > 1:
            up_filter = ops.setup_filter(sinc_lowpass(up_taps, band_in.cutoff, band_in.half_width, tmp_rate))
        if down_taps > 1:
            design = jinc_lowpass if radial_down_filter else sinc_lowpass
            down_filter = ops.setup_filter(design(down_taps, band_out.cutoff, band_out.half_width, tmp_rate))
        self.register_buffer("up_filter", up_filter, persistent=False)
        self.register_buffer("down_filter", down_filter, persistent=False)
        self.padding = resampling_padding(
            band_in, band_out, self.up, self.down, up_taps, down_taps, conv_kernel
        )

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False, fused_modconv: bool = True
    ) -> torch.Tensor:
        dtype = compute_dtype(self.use_fp16, x.device, self.weight.dtype)
        x = self.magnitude(x.to(dtype), update_emas)
        full = self.weight.shape[-1] - 1
        x = modulated_conv2d(x, self.weight, self.affine(w), fused=fused_modconv, padding=full)
        return filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            b=self.bias.to(dtype),
            up=self.up,
            down=self.down,
            padding=self.padding,
            clamp=self.conv_clamp,
        )

    def extra_repr(self) -> str:
        i, o = self.band_in, self.band_out
        return (
            f"channels={i.channels}->{o.channels}, size={i.size}->{o.size}, "
            f"sampling_rate={i.sampling_rate:g}->{o.sampling_rate:g}, cutoff={i.cutoff:g}->{o.cutoff:g}, "
            f"up={self.up}, down={self.down}, padding={self.padding}, fp16={self.use_fp16}"
        )


class ToRGB(StyleGAN2ToRGB):
    """StyleGAN2's ToRGB (modulated 1x1 conv without demodulation, bias, clamp) on the
    magnitude-normalised input: x [N, in_channels, H, W], w [N, w_dim] -> [N, img_channels, H, W]."""

    def __init__(
        self,
        in_channels: int,
        img_channels: int,
        w_dim: int,
        conv_clamp: float | None = None,
        magnitude_ema_beta: float = MAGNITUDE_EMA_BETA,
    ) -> None:
        super().__init__(in_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.magnitude = MagnitudeEMA(magnitude_ema_beta)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False, fused_modconv: bool = True
    ) -> torch.Tensor:
        return super().forward(self.magnitude(x, update_emas), w, fused_modconv)


def resampling_padding(
    band_in: Band, band_out: Band, up: int, down: int, up_taps: int, down_taps: int, conv_kernel: int
) -> tuple[int, int, int, int]:
    """filtered_lrelu padding (px0, px1, py0, py1) that centres output pixel q on band_out's pixel q.

    The full conv extends band_in's grid by (conv_kernel - 1) / 2 samples each side: its n = size +
    conv_kernel - 1 outputs start at start_in = (0.5 - n / 2) / s_in. After zero insertion, conv output
    i is sample up*i of the temporary-rate signal (position start_in + i / s_in). With leading padding
    p0, the valid up-filtering puts intermediate sample o at zero-inserted index o - p0 + (up_taps - 1)
    / 2, and the down filter puts output q at intermediate index q * down + (down_taps - 1) / 2.
    Equating output q = 0 with start_out gives p0; p1 then yields exactly band_out.size outputs.
    Negative values crop.
    """
    tmp_rate = band_in.sampling_rate * up
    in_size = band_in.size + conv_kernel - 1
    start_in = (0.5 - in_size / 2) / band_in.sampling_rate
    start_out = (0.5 - band_out.size / 2) / band_out.sampling_rate
    p0 = (start_in - start_out) * tmp_rate + (up_taps + down_taps) / 2 - 1
    if abs(p0 - round(p0)) > 1e-6:
        raise ValueError(
            f"the filter centres fall between output samples (leading padding {p0}); "
            "choose a filter_size that makes the up- and down-filter lengths even"
        )
    p0 = round(p0)
    p1 = (band_out.size - 1) * down + down_taps + up_taps - 1 - in_size * up - p0
    return (p0, p1, p0, p1)


def _integer_ratio(numerator: float, denominator: float) -> int:
    ratio = round(numerator / denominator)
    if ratio < 1 or abs(ratio * denominator - numerator) > 1e-6 * numerator:
        raise ValueError(f"sampling rates {numerator} and {denominator} are not integer multiples")
    return ratio
