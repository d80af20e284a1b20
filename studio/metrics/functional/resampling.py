"""Image resampling for the equivariance metrics: transformed copies of images [n, C, R, R] under
studio's [3, 3] output -> source maps in image units (the image spans [-0.5, 0.5]^2; pixel (row i,
column j) of R x R is centred at ((j + 0.5) / R - 0.5, (i + 0.5) / R - 0.5)), with the mask of the
pixels whose value the image determines."""

from __future__ import annotations

from typing import NamedTuple

import torch


def source_pixels(transforms: torch.Tensor, size: int) -> torch.Tensor:
    """[n, R, R, 2]: the (x, y) pixel positions (continuous column, row indices) that each pixel of an
    R x R output shows under transforms [n, 3, 3] (float64, on their device)."""
    coords = (torch.arange(size, dtype=torch.float64, device=transforms.device) + 0.5) / size - 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    m = transforms.to(torch.float64)[:, None, None]
    x = _to_pixels(m[..., 0, 0] * xx + m[..., 0, 1] * yy + m[..., 0, 2], size)
    y = _to_pixels(m[..., 1, 0] * xx + m[..., 1, 1] * yy + m[..., 1, 2], size)
    return torch.stack([x, y], dim=-1)


def lanczos_window(t: torch.Tensor, radius: int) -> torch.Tensor:
    """sinc(t / radius) for |t| < radius, else 0 (t in pixels)."""
    return torch.where(t.abs() < radius, torch.sinc(t / radius), torch.zeros_like(t))


def lanczos(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Lanczos kernel sinc(x) sinc(x / radius) for |x| < radius, else 0 (x in pixels)."""
    return torch.sinc(x) * lanczos_window(x, radius)


def transform_images(
    images: torch.Tensor, transforms: torch.Tensor, radius: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample images [n, C, R, R] under transforms [n, 3, 3] (output -> source, image units):
    (transformed [n, C, R, R] in images' dtype, valid [n, 1, R, R] bool).

    radius 0: the source position is rounded to the nearest pixel and copied (exact for integer
    translations); valid where it lies in the image. radius > 0: separable Lanczos interpolation over
    the (2 radius)^2 pixels around the source position, each axis's weights normalised to sum 1 (a
    constant image stays constant); valid where every pixel of non-zero weight lies in the image, so
    no value is made up (on a pixel centre: radius - 1 pixels in from each edge).
    """
    n, channels, size, _ = images.shape
    m = transforms.to(device=images.device, dtype=torch.float64)
    coords = (torch.arange(size, dtype=torch.float64, device=images.device) + 0.5 - size / 2) / size
    offsets = range(1 - radius, radius + 1) if radius else range(1)
    if bool((m[:, 0, 1] == 0).all() and (m[:, 1, 0] == 0).all()):
        # Axis-aligned (translations): the source column depends on the output column only and the
        # source row on the output row only, so two 1-D passes of 2 radius taps do it.
        sx = _to_pixels(m[:, 0, 0, None] * coords + m[:, 0, 2, None], size)  # [n, R] over columns
        sy = _to_pixels(m[:, 1, 1, None] * coords + m[:, 1, 2, None], size)  # [n, R] over rows
        x, y = _axis(sx, radius, size), _axis(sy, radius, size)
        along_x = torch.zeros_like(images)
        for d in offsets:
            index, weight = _tap(x, d, radius, size, images.dtype)
            along_x += images.gather(3, index[:, None, None].expand_as(images)) * weight[:, None, None]
        out = torch.zeros_like(images)
        for d in offsets:
            index, weight = _tap(y, d, radius, size, images.dtype)
            out += along_x.gather(2, index[:, None, :, None].expand_as(images)) * weight[:, None, :, None]
        return out, x.valid[:, None, None, :] & y.valid[:, None, :, None]
    source = source_pixels(m, size)
    x, y = _axis(source[..., 0], radius, size), _axis(source[..., 1], radius, size)
    flat = images.reshape(n, channels, size * size)
    out = torch.zeros_like(flat)
    for dy in offsets:
        row, wy = _tap(y, dy, radius, size, images.dtype)
        for dx in offsets:  # taps are recomputed rather than kept: (2 radius)^2 index maps are large
            col, wx = _tap(x, dx, radius, size, images.dtype)
            index = (row * size + col).reshape(n, 1, size * size).expand(-1, channels, -1)
            out += flat.gather(2, index) * (wy * wx).reshape(n, 1, size * size)
    return out.reshape(images.shape), (x.valid & y.valid)[:, None]


def _to_pixels(position: torch.Tensor, size: int) -> torch.Tensor:
    """Image-unit positions -> continuous pixel indices. Positions a rounding error away from a pixel
    centre are put on it, so that the taps, and which pixels are valid, never hinge on float noise (a
    quarter turn maps pixel centres onto pixel centres)."""
    pixels = position * size + size / 2 - 0.5
    return torch.where((pixels - pixels.round()).abs() < 1e-9, pixels.round(), pixels)


class _Axis(NamedTuple):
    """The interpolation along one axis at source positions pos (pixel indices, any shape): tap d reads
    pixel base + d with weight kernel(frac - d) / total; valid where no tap of non-zero weight is
    outside the image."""

    base: torch.Tensor  # long
    frac: torch.Tensor  # pos - base
    total: torch.Tensor  # the sum of the kernel weights over the taps
    valid: torch.Tensor  # bool


def _axis(pos: torch.Tensor, radius: int, size: int) -> _Axis:
    if not radius:
        base = pos.round()
        return _Axis(base.long(), pos - base, torch.ones_like(pos), (base >= 0) & (base <= size - 1))
    base = pos.floor()
    total = sum(lanczos(pos - base - d, radius) for d in range(1 - radius, radius + 1))
    # The taps of non-zero weight, pos - radius < k < pos + radius, must all lie in [0, size - 1].
    return _Axis(base.long(), pos - base, total, (pos - radius >= -1) & (pos + radius <= size))


def _tap(
    axis: _Axis, d: int, radius: int, size: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(source pixel index long, normalised weight in `dtype`) of tap offset d along one axis."""
    weight = lanczos(axis.frac - d, radius) / axis.total if radius else torch.ones_like(axis.frac)
    return (axis.base + d).clamp(0, size - 1), weight.to(dtype)
