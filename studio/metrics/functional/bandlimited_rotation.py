"""The rotation operators of EQ-R under protocol="nvlabs": the band-limited rotation R_a and the
pseudo-rotation R*_a of Karras et al. 2021, App. E.3, with the filter design, grid and masks of NVlabs'
reference metric (github.com/NVlabs/stylegan3, metrics/equivariance.py). Written from that math; the
outputs were compared with NVlabs' operators (benchmarks/compare_nvlabs_stylegan3.py).

A rotation keeps, of an image band-limited to the pixel grid's square band, only the frequencies in
the intersection of that square and its turned copy. R_a[x] (`rotate_bandlimited`) upsamples x by UP
with a filter passing that intersection and samples the result bilinearly at the rotated positions.
R*_a[y] (`pseudo_rotate`) leaves y in place but filters it with the intersection of the opposite turn,
so that the generator's rotated image loses what the rotation of the reference could not carry.

Transforms are studio's [3, 3] output -> source maps in image units (equivariance.rotation); only their
2 x 2 part is used here (rotations about the image centre).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf

from studio.metrics.functional.resampling import lanczos_window, source_pixels

UP = 4  # the upsampling factor of R_a
PERIOD_RADIUS = 64  # px: the filters are designed on a periodic grid of 2 * PERIOD_RADIUS px


def oriented_lowpass(mats: torch.Tensor, radius: int, up: int) -> torch.Tensor:
    """Filters [n, T, T] (float64 on mats' device; T = 4 radius up - 1 taps 1/up px apart; rows y, columns
    x) passing the frequencies inside both the unit pixel grid's square band and the band of the grid
    seen through mats[i] ([n, 2, 2]: the filter's rotated frame has coordinates mats[i] @ (x, y)).

    The ideal filter is sinc(x) sinc(y) convolved with sinc(x') sinc(y'), (x', y') = mats[i] @ (x, y);
    it is windowed by the same convolution of the separable Lanczos window of `radius`. Both
    convolutions are circular, by FFT, on a grid of 1/up px over a period of 2 PERIOD_RADIUS px; the
    taps within 2 radius px of the centre are kept and each polyphase component (taps whose offsets
    share the same fraction of a pixel along each axis) is scaled to sum to 1, so that a constant image
    stays constant."""
    size = 2 * PERIOD_RADIUS * up - 1
    t = torch.arange(size, dtype=torch.float64, device=mats.device) - size // 2
    t = torch.fft.ifftshift(t) / up  # FFT order: t[0] = 0
    y, x = torch.meshgrid(t, t, indexing="ij")
    m = mats.to(torch.float64)[:, :, :, None, None]
    xr, yr = m[:, 0, 0] * x + m[:, 0, 1] * y, m[:, 1, 0] * x + m[:, 1, 1] * y

    def convolve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(a) * torch.fft.fft2(b)).real

    ideal = convolve(torch.sinc(x) * torch.sinc(y), torch.sinc(xr) * torch.sinc(yr))
    window = convolve(
        lanczos_window(x, radius) * lanczos_window(y, radius),
        lanczos_window(xr, radius) * lanczos_window(yr, radius),
    )
    half = 2 * radius * up - 1  # taps either side of the centre
    centre = size // 2
    taps = torch.fft.fftshift(ideal * window, dim=(-2, -1))[
        :, centre - half : centre + half + 1, centre - half : centre + half + 1
    ]
    phase = torch.arange(-half, half + 1, device=mats.device) % up
    onehot = nnf.one_hot(phase, up).to(torch.float64)  # [T, up]
    sums = torch.einsum("ia,nij,jb->nab", onehot, taps, onehot)
    return taps / sums[:, phase[:, None], phase[None, :]]


def rotate_bandlimited(
    images: torch.Tensor, transforms: torch.Tensor, radius: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """R_a: images [n, C, R, R] rotated by transforms [n, 3, 3] -> (rotated [n, C, R, R] in images'
    dtype, valid [n, 1, R, R] bool).

    Each image is upsampled by UP with oriented_lowpass(transforms[i]^-1, radius, UP) (fine sample q
    along an axis lies at pixel position (q - P) / UP, P = the filter's half-width in fine samples) and
    sampled bilinearly at the source positions of the output pixels. A pixel is valid where the nearest
    fine sample is at least 2P + 1 samples inside NVlabs' upsampled canvas, which spans fine samples
    -UP/2 .. UP R + 2P - UP/2 - 1 in these coordinates: pixels about 6 px in from the edges (radius 3)."""
    n, channels, size, _ = images.shape
    m = transforms.to(device=images.device, dtype=torch.float64)
    filters = oriented_lowpass(torch.linalg.inv(m[:, :2, :2]), radius, UP)
    half = filters.shape[-1] // 2
    flat, weight = _depthwise(images, filters)
    fine = nnf.conv_transpose2d(flat, weight, stride=UP, groups=n * channels)
    fine = fine.reshape(n, channels, *fine.shape[-2:])
    source = source_pixels(m, size)  # [n, R, R, (x, y)] in pixels
    q = source * UP + half  # fine sample indices
    rotated = _bilinear(fine, q)
    nearest = torch.round(q + UP // 2)
    inside = (nearest >= 2 * half + 1) & (nearest <= UP * size - 2)
    return rotated, inside.all(dim=-1)[:, None]


def _depthwise(images: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [n, C, R, R] as [1, n C, R, R], filters [n, T, T] as grouped-conv weights [n C, 1, T, T]):
    sample i's filter on each of its channels, in one grouped convolution."""
    n, channels, size, _ = images.shape
    weight = filters.to(device=images.device, dtype=images.dtype).repeat_interleave(channels, 0)[:, None]
    return images.reshape(1, n * channels, size, size), weight


def _bilinear(images: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """images [n, C, S, S] sampled at q [n, R, R, 2] (x, y sample indices, float64) -> [n, C, R, R];
    weights in float64, indices clamped to the canvas (only valid pixels are read)."""
    n, channels, size, _ = images.shape
    base = q.floor()
    frac = (q - base).to(images.dtype)
    out = torch.zeros(n, channels, *q.shape[1:3], dtype=images.dtype, device=images.device)
    flat = images.reshape(n, channels, size * size)
    for dy in (0, 1):
        wy = frac[..., 1] if dy else 1 - frac[..., 1]
        row = (base[..., 1].long() + dy).clamp(0, size - 1)
        for dx in (0, 1):
            wx = frac[..., 0] if dx else 1 - frac[..., 0]
            col = (base[..., 0].long() + dx).clamp(0, size - 1)
            index = (row * size + col).reshape(n, 1, -1).expand(-1, channels, -1)
            out += flat.gather(2, index).reshape(out.shape) * (wy * wx)[:, None]
    return out


def pseudo_rotate(
    images: torch.Tensor, transforms: torch.Tensor, radius: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """R*_a: images [n, C, R, R] filtered in place with oriented_lowpass(transforms[i], radius, 1) (zero
    padding) -> (filtered [n, C, R, R], valid [n, 1, R, R] bool: pixels at least the filter's
    half-width, 2 radius - 1 px, in from every edge)."""
    n, channels, size, _ = images.shape
    filters = oriented_lowpass(transforms.to(device=images.device, dtype=torch.float64)[:, :2, :2], radius, 1)
    half = filters.shape[-1] // 2
    flat, weight = _depthwise(images, filters)
    filtered = nnf.conv2d(flat, weight, padding=half, groups=n * channels).reshape(images.shape)
    valid = torch.zeros(n, 1, size, size, dtype=torch.bool, device=images.device)
    valid[..., half : size - half, half : size - half] = True
    return filtered, valid
