"""Modulated convolution with weight demodulation (StyleGAN2, section 2.2).

For sample n, output channel o, input channel i and tap k:
    w'[n,o,i,k] = s[n,i] * w[o,i,k]                            (modulation)
    w''[n,o,i,k] = w'[n,o,i,k] / sqrt(sum_{i,k} w'[n,o,i,k]^2 + eps)   (demodulation)
Two exact implementations:
- fused: build w'' per sample and run one grouped conv with groups = N;
- per-sample scaling: conv(x * s, w) * d, with the demodulation coefficient
  d[n,o] = 1 / sqrt(sum_i s[n,i]^2 * sum_k w[o,i,k]^2 + eps) — one shared-weight conv for the batch.
"""

import torch
import torch.nn.functional as F

from models.stylegan2.layers import conv2d_up2

DEMOD_EPS = 1e-8


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """d[n, o] = 1 / sqrt(sum_i styles[n,i]^2 * sum_k weight[o,i,k]^2 + eps).

    weight [O, I, k, k], styles [N, I] -> [N, O].
    """
    return (styles.square() @ weight.square().sum(dim=[2, 3]).t() + DEMOD_EPS).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: int = 1,
    resample_filter: torch.Tensor | None = None,
    fused: bool = True,
    noise: torch.Tensor | None = None,
    padding: int | None = None,
) -> torch.Tensor:
    """Modulated conv of x [N, I, H, W] with weight [O, I, k, k] and styles [N, I], plus `noise`.

    up=2 convolves at twice the resolution (see conv2d_up2; needs resample_filter). noise (broadcastable
    to the output, already scaled) is added after demodulation, fused with it on the per-sample path.
    `padding` (up=1 only; None: k // 2, 'same') zero-pads each side; k - 1 gives the full convolution.
    Returns [N, O, H*up + 2*padding - k + 1, ...] in x.dtype ([N, O, H*up, W*up] by default). For fp16
    x, styles and demodulation are computed in float32.
    """
    n, in_channels, h, w = x.shape
    out_channels, _, k, _ = weight.shape
    if styles.shape != (n, in_channels):
        raise ValueError(
            f"styles must be [{n}, {in_channels}] for x {list(x.shape)}, got {list(styles.shape)}"
        )
    compute_dtype = torch.float32 if x.dtype == torch.float16 else x.dtype
    weight = weight.to(compute_dtype)
    styles = styles.to(compute_dtype)
    if demodulate and x.dtype == torch.float16:
        # Demodulation cancels any per-output-channel weight scale and any per-sample style scale, so
        # bring each filter to unit L2 norm and the styles to max |.| = 1 first: then ||s * w[o]|| <= 1,
        # and by Cauchy-Schwarz the undemodulated conv of the per-sample path is at most the norm of an
        # input patch (512 x 3 x 3 at the clamp of 256: 1.7e4), below float16's 65504.
        weight = weight / weight.square().sum(dim=[1, 2, 3], keepdim=True).sqrt()
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None

    if fused:
        scale = styles[:, None, :] if dcoefs is None else styles[:, None, :] * dcoefs[:, :, None]  # [N, O, I]
        w_per_sample = (weight[None] * scale[..., None, None]).reshape(n * out_channels, in_channels, k, k)
        x = x.reshape(1, n * in_channels, h, w)
        x = _conv(x, w_per_sample.to(x.dtype), up, resample_filter, groups=n, padding=padding)
        x = x.reshape(n, out_channels, *x.shape[2:])
        return x if noise is None else x + noise

    x = x * styles.to(x.dtype)[:, :, None, None]
    x = _conv(x, weight.to(x.dtype), up, resample_filter, groups=1, padding=padding)
    if dcoefs is None:
        return x if noise is None else x + noise
    dcoefs = dcoefs.to(x.dtype)[:, :, None, None]
    return x * dcoefs if noise is None else torch.addcmul(noise, x, dcoefs)


def _conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    up: int,
    resample_filter: torch.Tensor | None,
    groups: int,
    padding: int | None,
) -> torch.Tensor:
    if up == 1:
        same = weight.shape[-1] // 2
        return F.conv2d(x, weight, padding=same if padding is None else padding, groups=groups)
    if padding is not None:
        raise ValueError("modulated_conv2d takes `padding` only with up=1")
    if up != 2 or resample_filter is None:
        raise ValueError(f"modulated_conv2d supports up=1, or up=2 with a resample_filter; got up={up}")
    return conv2d_up2(x, weight, resample_filter, groups=groups)
