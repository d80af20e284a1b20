"""Kaiser-windowed low-pass filters of StyleGAN3 (paper, section 3.2 and appendix): a separable sinc for
config T, and a radially symmetric jinc for the down-sampling filters of config R.

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
    h(r) = cutoff * J1(2 pi cutoff r) / r (r in unit lengths, h(0) = pi cutoff^2). It is multiplied by the
    1-D Kaiser window of the separable design evaluated at the tap's radius (zero beyond its half-length),
    so the filter stays isotropic, which rotation equivariance needs.
    """
    offsets = np.arange(numtaps) - (numtaps - 1) / 2  # tap positions in samples
    radius = np.hypot(offsets[:, None], offsets[None, :])  # [numtaps, numtaps], in samples
    r = radius / sampling_rate
    safe_r = np.where(r > 0, r, 1.0)
    jinc = np.where(r > 0, cutoff * scipy.special.j1(2 * np.pi * cutoff * safe_r) / safe_r, np.pi * cutoff**2)
    half_length = (numtaps - 1) / 2
    beta = kaiser_beta(numtaps, half_width, sampling_rate)
    inside = np.clip(1 - (radius / half_length) ** 2, 0, None)
    window = np.where(radius <= half_length, np.i0(beta * np.sqrt(inside)) / np.i0(beta), 0.0)
    taps = jinc * window
    return taps / taps.sum()
