"""Image resampling for the augmentations, built only from ops whose double backward PyTorch implements.

Every function is linear in the images and made of `gather`, `index_select`, convolutions and
elementwise arithmetic, so gradients of any order w.r.t. the images work on every supported torch
version. (`F.grid_sample` is avoided on purpose: the derivative of its backward is missing before
torch 2.12, and R1 through an augmentation needs it.) Coordinates, sampling positions and indices never
need gradients; they are constants of one draw.

Coordinates are in pixels. "Index coordinates" put pixel (i, j)'s centre at (i, j); "centred
coordinates" subtract the image centre ((H - 1) / 2, (W - 1) / 2), so that geometric matrices rotate and
scale about the middle of the image.

Out-of-image samples are mirrored ("reflect" padding: the image is mirrored about its first and last
pixel centres, as numpy's and `F.pad`'s "reflect"), repeated as often as needed, so no padding size has
to be chosen in advance and nothing is black.

Resampling under a general affine matrix (`resample`) is band-limited, in three linear steps:

1. upsample 2x with a 16-tap Kaiser-windowed sinc (cutoff 0.5 cycles per input pixel, transition band
   0.3 to 0.7; response within 0.3% of 1 up to 0.25, 0.86 at 0.4, 0.50 at 0.5, 0.14 at 0.6, < 0.004
   from 0.7 cycles per pixel), so the image is densely sampled before interpolation;
2. bilinear interpolation of the 2x image at the transformed positions of a 2x output grid (one with a
   margin so that step 3 needs no padding);
3. low-pass with the same filter and keep every other sample (2x downsampling), which removes the
   frequencies the transform pushed above the output's Nyquist limit before they alias.

Each polyphase component of the filter sums to 1/2, so constants are reproduced exactly (up to rounding)
and a smooth image comes back almost unchanged under the identity.
"""

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from models.stylegan3.filters import sinc_lowpass

# Low-pass of the 2x up/down sampling: taps (even, so output pixels fall between 2x samples), cutoff and
# half transition width in cycles per input pixel, at 2 samples per input pixel. Sum 1.
FILTER_TAPS = 16
FILTER_CUTOFF = 0.5
FILTER_HALF_WIDTH = 0.2


@lru_cache(maxsize=1)
def _lowpass_taps() -> tuple[float, ...]:
    return tuple(float(t) for t in sinc_lowpass(FILTER_TAPS, FILTER_CUTOFF, FILTER_HALF_WIDTH, 2.0))


def lowpass_filter(dtype: torch.dtype, device: torch.device) -> Tensor:
    """The 1-D resampling low-pass [FILTER_TAPS] (symmetric, sum 1) in `dtype` on `device`."""
    return torch.tensor(_lowpass_taps(), dtype=dtype, device=device)


def reflect_index(index: Tensor, size: int) -> Tensor:
    """Integer indices of any value mirrored into [0, size - 1] (mirror about the edge pixel centres)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)


def reflect_coord(coord: Tensor, size: int) -> Tensor:
    """Continuous index coordinates mirrored into [0, size - 1], the continuous version of `reflect_index`."""
    if size == 1:
        return torch.zeros_like(coord)
    period = 2.0 * (size - 1)
    coord = torch.remainder(coord, period)
    return torch.where(coord > size - 1, period - coord, coord)


def gather_pixels(images: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """images[n, :, rows[n, i, j], cols[n, i, j]]: [N, C, H', W'] from images [N, C, H, W].

    rows and cols are int64 index tensors that broadcast to [N, H', W'] (within the image). A gather
    (backward: scatter-add, whose backward is a gather again) keeps every derivative order available.
    """
    n, c, h, w = images.shape
    rows, cols = torch.broadcast_tensors(rows, cols)
    flat = (rows * w + cols).reshape(n, 1, -1).expand(n, c, -1)
    return images.reshape(n, c, h * w).gather(2, flat).reshape(n, c, *rows.shape[1:])


def bilinear(images: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Bilinear samples [N, C, H', W'] of images [N, C, H, W] at index coordinates rows, cols [N, H', W'].

    The coordinates must lie in [0, H - 1] x [0, W - 1] (mirror them first with `reflect_coord`).
    """
    _, _, h, w = images.shape
    row0 = rows.floor().clamp(0, max(h - 2, 0))
    col0 = cols.floor().clamp(0, max(w - 2, 0))
    # Weights of the second tap; clamped so that rounding at the last pixel cannot extrapolate.
    wr = (rows - row0).clamp(0, 1).to(images.dtype).unsqueeze(1)
    wc = (cols - col0).clamp(0, 1).to(images.dtype).unsqueeze(1)
    r0, c0 = row0.long(), col0.long()
    r1, c1 = (r0 + 1).clamp(max=h - 1), (c0 + 1).clamp(max=w - 1)
    top = gather_pixels(images, r0, c0) * (1 - wc) + gather_pixels(images, r0, c1) * wc
    bottom = gather_pixels(images, r1, c0) * (1 - wc) + gather_pixels(images, r1, c1) * wc
    return top * (1 - wr) + bottom * wr


def reflect_pad(images: Tensor, pad: int) -> Tensor:
    """images [N, C, H, W] mirrored by `pad` pixels on each side: [N, C, H + 2 pad, W + 2 pad].

    Unlike `F.pad(mode="reflect")` the pad may exceed the image (the mirror repeats).
    """
    _, _, h, w = images.shape
    device = images.device
    rows = reflect_index(torch.arange(-pad, h + pad, device=device), h)
    cols = reflect_index(torch.arange(-pad, w + pad, device=device), w)
    return images.index_select(2, rows).index_select(3, cols)


def upsample2(images: Tensor, taps: Tensor) -> Tensor:
    """2x upsampling [N, C, 2H, 2W] of images [N, C, H, W] with the separable low-pass `taps` [L], L even.

    Output sample (a, b) sits at index coordinates (a / 2 - 1/4, b / 2 - 1/4) of the input. The input is
    mirrored by ceil(L / 4) pixels first so that the filter sees the reflect-padded image at the borders.
    """
    n, c, h, w = images.shape
    length = taps.numel()
    pad = (length + 3) // 4
    x = reflect_pad(images, pad).reshape(n * c, 1, h + 2 * pad, w + 2 * pad)
    kernel = 2 * taps  # gain 2 per axis: each polyphase component then sums to 1
    # Transposed convolution = zero insertion + filtering; cropping L/2 - 1 centres input pixel i
    # between outputs 2i and 2i + 1 (the filter is symmetric, so convolution = correlation).
    x = F.conv_transpose2d(x, kernel.view(1, 1, length, 1), stride=(2, 1), padding=(length // 2 - 1, 0))
    x = F.conv_transpose2d(x, kernel.view(1, 1, 1, length), stride=(1, 2), padding=(0, length // 2 - 1))
    x = x[:, :, 2 * pad : 2 * pad + 2 * h, 2 * pad : 2 * pad + 2 * w]
    return x.reshape(n, c, 2 * h, 2 * w)


def downsample2(images: Tensor, taps: Tensor) -> Tensor:
    """Low-pass and 2x decimation without padding: [N, C, (H - L) / 2 + 1, (W - L) / 2 + 1].

    Output i is the `taps`-weighted sum of inputs 2i .. 2i + L - 1, centred between inputs
    2i + L/2 - 1 and 2i + L/2.
    """
    n, c, h, w = images.shape
    length = taps.numel()
    x = images.reshape(n * c, 1, h, w)
    x = F.conv2d(x, taps.view(1, 1, length, 1), stride=(2, 1))
    x = F.conv2d(x, taps.view(1, 1, 1, length), stride=(1, 2))
    return x.reshape(n, c, x.shape[2], x.shape[3])


def affine_inverse(matrix: Tensor) -> Tensor:
    """Inverse [N, 3, 3] of affine matrices [N, 3, 3] (last row 0 0 1), in closed form.

    Closed form rather than `torch.linalg.inv`: no solver, no host synchronisation for error checks, and
    integer matrices with determinant +-1 (pixel blits) invert exactly.
    """
    a, b, tx = matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 0, 2]
    c, d, ty = matrix[:, 1, 0], matrix[:, 1, 1], matrix[:, 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = [
        torch.stack([ia, ib, -(ia * tx + ib * ty)], dim=1),
        torch.stack([ic, id_, -(ic * tx + id_ * ty)], dim=1),
        torch.stack([zero, zero, one], dim=1),
    ]
    return torch.stack(rows, dim=1)


def _source_coords(inverse: Tensor, rows: Tensor, cols: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Index coordinates [N, len(rows), len(cols)] of the input that output index coordinates map from.

    inverse [N, 3, 3] maps centred output coordinates (x = column, y = row) to centred input ones.
    """
    x = (cols - (w - 1) / 2).view(1, 1, -1)
    y = (rows - (h - 1) / 2).view(1, -1, 1)
    m = inverse.unsqueeze(-1).unsqueeze(-1)  # [N, 3, 3, 1, 1] to broadcast over the grid
    src_x = m[:, 0, 0] * x + m[:, 0, 1] * y + m[:, 0, 2] + (w - 1) / 2
    src_y = m[:, 1, 0] * x + m[:, 1, 1] * y + m[:, 1, 2] + (h - 1) / 2
    return src_y, src_x


def blit(images: Tensor, matrix: Tensor) -> Tensor:
    """Exact (lossless) pixel blit of images [N, C, H, W] by integer affine matrices [N, 3, 3].

    `matrix` maps centred input coordinates to centred output ones (the content moves by it); it must
    send pixel centres to pixel centres (x-flips, 90-degree rotations of square images, integer
    translations). Each output pixel copies the input pixel its inverse lands on, rounded to the nearest
    one (which only matters for a 90-degree rotation of a non-square image), mirrored at the borders.
    """
    _, _, h, w = images.shape
    inverse = affine_inverse(matrix)
    rows = torch.arange(h, device=images.device, dtype=inverse.dtype)
    cols = torch.arange(w, device=images.device, dtype=inverse.dtype)
    src_y, src_x = _source_coords(inverse, rows, cols, h, w)
    src_y = reflect_index(torch.round(src_y).long(), h)
    src_x = reflect_index(torch.round(src_x).long(), w)
    return gather_pixels(images, src_y, src_x)


def resample(images: Tensor, matrix: Tensor) -> Tensor:
    """images [N, C, H, W] transformed by affine matrices [N, 3, 3], band-limited (module docstring).

    `matrix` maps centred input coordinates (pixels) to centred output ones: the content moves by it.
    Returns [N, C, H, W] in the images' dtype.
    """
    _, _, h, w = images.shape
    taps = lowpass_filter(images.dtype, images.device)
    margin = taps.numel() // 2 - 1  # 2x samples the decimation filter reaches beyond the output
    up = upsample2(images, taps)  # sample (a, b) at index coordinates (a / 2 - 1/4, b / 2 - 1/4)
    coord_dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    inverse = affine_inverse(matrix.to(coord_dtype))
    # The 2x output grid, margin included, in output index coordinates.
    rows = torch.arange(-margin, 2 * h + margin, device=images.device, dtype=coord_dtype) / 2 - 0.25
    cols = torch.arange(-margin, 2 * w + margin, device=images.device, dtype=coord_dtype) / 2 - 0.25
    src_y, src_x = _source_coords(inverse, rows, cols, h, w)
    # Mirroring the source position is mirroring the image; the 2x image is itself symmetric about the
    # edge pixel centres, so sampling it inside [0, size - 1] needs no further padding.
    src_y, src_x = reflect_coord(src_y, h), reflect_coord(src_x, w)
    dense = bilinear(up, 2 * src_y + 0.5, 2 * src_x + 0.5)
    return downsample2(dense, taps)
