"""Per-layer band limits of the StyleGAN3 synthesis network (Karras et al. 2021, section 3.2 and
appendix F).

Frequencies are in cycles per unit length and sampling rates in samples per unit length, where the
output image spans the unit square. Entry i describes the output of synthesis layer i (entry num_layers
is ToRGB); the Fourier-feature input shares entry 0 with layer 0. With e_i = min(i / (N - N_crit), 1):
    cutoff f_c,i = f_c,0 * (f_c,N / f_c,0) ** e_i with f_c,0 = first_cutoff, f_c,N = img_resolution / 2;
    stopband f_t,i = f_t,0 * (f_t,N / f_t,0) ** e_i with f_t,0 = first_stopband,
        f_t,N = f_c,N * last_stopband_rel;
    sampling rate s_i = smallest power of two >= 2 f_t,i, capped at img_resolution;
    filter transition half-width f_h,i = max(f_t,i, s_i / 2) - f_c,i;
    size s_i + 2 * margin_size pixels, except exactly img_resolution for the last two entries;
    channels min(channel_base / (2 f_c,i), channel_max), rounded, and img_channels for ToRGB.
The last N_crit layers (and ToRGB) are critically sampled: f_c = s / 2.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    """One feature map: channels, size (pixels, margins included), sampling rate, cutoff, stopband and
    filter transition half-width (all in units of the unit-square image); critically sampled when
    cutoff == sampling_rate / 2."""

    channels: int
    size: int
    sampling_rate: float
    cutoff: float
    stopband: float
    half_width: float
    critically_sampled: bool


def synthesis_schedule(
    img_resolution: int,
    img_channels: int,
    channel_base: int,
    channel_max: int,
    num_layers: int = 14,
    num_critical: int = 2,
    first_cutoff: float = 2,
    first_stopband: float = 2**2.1,
    last_stopband_rel: float = 2**0.3,
    margin_size: int = 10,
) -> list[Band]:
    """The num_layers + 1 output bands: entries 0 .. num_layers - 1 are the conv layers, the last ToRGB."""
    if img_resolution < 8 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
    if not 0 <= num_critical < num_layers:
        raise ValueError(f"need 0 <= num_critical < num_layers, got {num_critical} and {num_layers}")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    bands = []
    for i in range(num_layers + 1):
        e = min(i / (num_layers - num_critical), 1.0)
        cutoff = _geometric(first_cutoff, last_cutoff, e)
        stopband = _geometric(first_stopband, last_stopband, e)
        sampling_rate = 2 ** math.ceil(math.log2(min(2 * stopband, img_resolution)))
        channels = round(min(channel_base / 2 / cutoff, channel_max))
        bands.append(
            Band(
                channels=img_channels if i == num_layers else channels,
                size=img_resolution if i >= num_layers - 1 else sampling_rate + 2 * margin_size,
                sampling_rate=sampling_rate,
                cutoff=cutoff,
                stopband=stopband,
                half_width=max(stopband, sampling_rate / 2) - cutoff,
                critically_sampled=i >= num_layers - num_critical,
            )
        )
    if bands[0].cutoff >= bands[0].sampling_rate / 2:
        raise ValueError(
            f"first_cutoff={first_cutoff} must lie below the input's Nyquist frequency "
            f"{bands[0].sampling_rate / 2} (raise img_resolution or first_stopband)"
        )
    return bands


def _geometric(first: float, last: float, e: float) -> float:
    """first * (last / first) ** e, exactly `last` at e = 1 (critical sampling is tested for equality)."""
    return last if e >= 1 else first * (last / first) ** e
