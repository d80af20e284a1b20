"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R (Karras et al. 2021, "Alias-Free Generative Adversarial
Networks", Sec. 3 and App. E), implemented from the paper's definition:

    EQ = 10 log10(I_max^2 / E[(g(t[z0]; w)_c(p) - t[g(z0; w)]_c(p))^2])  (dB, higher is better)

g(z0; w) is the synthesis network on its Fourier-feature input z0 with style w; t a random transform of
the input (through StyleGAN3's `synthesis.input.transform`) and of the output image (by resampling).
The expectation runs over w, t, colour channels c and the pixels p where both images are valid; the
intended image range [-1, 1] gives I_max = 2. EQ-T uses integer-pixel translations, EQ-T_frac
continuous ones, EQ-R rotations about the image centre.

Coordinates are image units: the image spans [-0.5, 0.5]^2 and pixel (row i, column j) of an R x R image
is centred at x = (j + 0.5 - R/2) / R, y = (i + 0.5 - R/2) / R. A transform is a 3x3 affine matrix M
from output coordinates to source coordinates: the transformed image shows at p what the original
shows at M p (translating the content by t is M = [[1, 0, -t_x], [0, 1, -t_y], [0, 0, 1]]). The same M
goes to the generator's input transform and to the output resampling, so both sides agree by
construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from studio.sampling import class_labels

KINDS = ("eq_t", "eq_t_frac", "eq_r")
I_MAX = 2.0  # the intended dynamic range [-1, 1]


def check_arguments(
    kinds: Sequence[str],
    num_samples: int,
    translate_max: float,
    rotate_max: float,
    lanczos_radius: int,
    batch: int,
) -> None:
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"metrics must be a non-empty subset of {list(KINDS)}, got {list(kinds)}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not 0 <= translate_max < 0.5:
        raise ValueError(
            f"translate_max must be in [0, 0.5) (a fraction of the image size), got {translate_max}"
        )
    if not 0 <= rotate_max <= 180:
        raise ValueError(f"rotate_max must be in [0, 180] degrees, got {rotate_max}")
    if not (isinstance(lanczos_radius, int) and lanczos_radius >= 1):
        raise ValueError(f"lanczos_radius must be an integer >= 1 (pixels), got {lanczos_radius!r}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")


def input_transform(G: nn.Module) -> torch.Tensor | None:
    """G.synthesis.input.transform (StyleGAN3's [3, 3] input transform), or None when G has none."""
    transform = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None)
    return transform if isinstance(transform, torch.Tensor) and transform.shape == (3, 3) else None


def check_generator(G: nn.Module, kinds: Sequence[str]) -> None:
    """ValueError unless G's input can be transformed (a StyleGAN3 generator)."""
    if input_transform(G) is None:
        # Imported here: `models` builds every network module (and ops), which the functional metrics
        # should not pull in on import.
        from models.registry import network_name

        try:
            name = network_name(G)[0]
        except KeyError:  # an unregistered module
            name = type(G).__name__
        verb = "needs" if len(kinds) == 1 else "need"
        raise ValueError(
            f"{', '.join(kinds)} {verb} a generator with an input transform (StyleGAN3's "
            f"synthesis.input.transform); {name} has none"
        )


def translation(tx: float, ty: float) -> torch.Tensor:
    """The [3, 3] float64 output -> source map of translating the image content by (tx, ty)."""
    return torch.tensor([[1.0, 0.0, -tx], [0.0, 1.0, -ty], [0.0, 0.0, 1.0]], dtype=torch.float64)


def rotation(degrees: float) -> torch.Tensor:
    """The [3, 3] float64 output -> source map of rotating the content by `degrees` about the centre
    (from +x towards +y: clockwise on screen, where y runs down the rows)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return torch.tensor([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def draw_samples(
    G: nn.Module, seeds: Sequence[int], translate_max: float, rotate_max: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(z [n, z_dim] float32, {kind: transforms [n, 3, 3] float64}) on the CPU.

    Sample i draws from a torch.Generator seeded with seeds[i]: z first (the latent studio.sampling
    gives image seeds[i]), then u ~ U[-1, 1)^5: (u0, u1) * translate_max rounded to whole pixels is the
    eq_t offset, (u2, u3) * translate_max the eq_t_frac offset, u4 * rotate_max the eq_r angle in
    degrees. Every kind is drawn whichever are asked for, so a kind's value never depends on the others.
    """
    resolution = G.img_resolution
    z, transforms = [], {kind: [] for kind in KINDS}
    for s in seeds:
        gen = torch.Generator().manual_seed(s)
        z.append(torch.randn(G.z_dim, generator=gen))
        u = (2 * torch.rand(5, generator=gen, dtype=torch.float64) - 1).tolist()
        pixels = [round(v * translate_max * resolution) for v in u[:2]]
        transforms["eq_t"].append(translation(pixels[0] / resolution, pixels[1] / resolution))
        transforms["eq_t_frac"].append(translation(u[2] * translate_max, u[3] * translate_max))
        transforms["eq_r"].append(rotation(u[4] * rotate_max))
    return torch.stack(z), {kind: torch.stack(m) for kind, m in transforms.items()}


def lanczos(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Lanczos kernel sinc(x) sinc(x / radius) for |x| < radius, else 0 (x in pixels)."""
    return torch.where(x.abs() < radius, torch.sinc(x) * torch.sinc(x / radius), torch.zeros_like(x))


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
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    mm = m[:, None, None]  # [n, 1, 1, 3, 3]: source positions [n, R, R] of every output pixel
    x = _axis(_to_pixels(mm[..., 0, 0] * xx + mm[..., 0, 1] * yy + mm[..., 0, 2], size), radius, size)
    y = _axis(_to_pixels(mm[..., 1, 0] * xx + mm[..., 1, 1] * yy + mm[..., 1, 2], size), radius, size)
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


def transformed_synthesis(G: nn.Module, ws: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """G.synthesis(ws) [n, C, R, R] with sample i's input transformed by transforms[i] [3, 3] (output ->
    source, after any transform the generator already has). The [3, 3] buffer is replaced by the
    per-sample [n, 3, 3] stack for this call only (it broadcasts in the input layer's matrix product)
    and put back afterwards, whatever happens."""
    layer = G.synthesis.input
    base = layer.transform
    layer.transform = base @ transforms.to(device=base.device, dtype=base.dtype)
    try:
        return G.synthesis(ws, noise_mode="const")
    finally:
        layer.transform = base


@torch.no_grad()
def batch_errors(
    G: nn.Module,
    seeds: Sequence[int],
    kinds: Sequence[str],
    translate_max: float,
    rotate_max: float,
    lanczos_radius: int,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """{kind: per-sample mean squared error [len(seeds)] (float64, CPU)} of one batch: the mean over
    colour channels and the valid pixels of (g(t[z0]) - t[g(z0)])^2. The untransformed images are
    synthesised once and shared by the kinds."""
    z, transforms = draw_samples(G, seeds, translate_max, rotate_max)
    dtype = next(G.parameters()).dtype
    c = class_labels(G, seeds)
    c = None if c is None else c.to(device=device, dtype=dtype)
    ws = G.mapping(z.to(device=device, dtype=dtype), c)
    images = G.synthesis(ws, noise_mode="const")
    errors = {}
    for kind in kinds:
        moved_output = transformed_synthesis(G, ws, transforms[kind])
        radius = 0 if kind == "eq_t" else lanczos_radius
        moved_image, valid = transform_images(images, transforms[kind], radius)
        squared = (moved_output - moved_image).double().square() * valid
        count = valid.sum(dim=(1, 2, 3)) * images.shape[1]
        if (count == 0).any():
            raise ValueError(
                f"{kind}: a transformed {G.img_resolution}x{G.img_resolution} image has no valid pixel "
                "left; lower translate_max, rotate_max or lanczos_radius"
            )
        errors[kind] = (squared.sum(dim=(1, 2, 3)) / count).cpu()
    return errors


def equivariance_errors(
    G: nn.Module,
    seeds: Sequence[int],
    kinds: Sequence[str],
    translate_max: float,
    rotate_max: float,
    lanczos_radius: int,
    batch: int,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """{kind: per-sample MSE float64 [len(seeds)] on the CPU}, `batch` samples at a time. Each sample is
    seeded by its own seed, so a contiguous slice of the seeds gives the same values as the whole
    (processes can split the samples)."""
    transform = (translate_max, rotate_max, lanczos_radius)
    chunks = [
        batch_errors(G, seeds[start : start + batch], kinds, *transform, device)
        for start in range(0, len(seeds), batch)
    ]
    empty = torch.zeros(0, dtype=torch.float64)
    return {kind: torch.cat([chunk[kind] for chunk in chunks]) if chunks else empty for kind in kinds}


def psnr_from_errors(errors: np.ndarray | torch.Tensor) -> float:
    """10 log10(I_max^2 / mean of the per-sample MSEs) in dB (+inf for a zero mean); non-finite errors
    are an error (a diverged or fp16-overflowing generator)."""
    errors = np.asarray(errors, dtype=np.float64)
    bad = int((~np.isfinite(errors)).sum())
    if bad:
        raise ValueError(f"{bad} of {errors.size} equivariance errors are NaN or Inf; check the generator")
    mse = float(errors.mean())
    return math.inf if mse == 0 else 10 * math.log10(I_MAX**2 / mse)


def equivariance(
    G: nn.Module,
    metrics: Sequence[str] = KINDS,
    num_samples: int = 50000,
    translate_max: float = 0.125,
    rotate_max: float = 180.0,
    lanczos_radius: int = 8,
    batch: int = 16,
    seed: int = 0,
    device: torch.device | str | None = None,
    return_errors: bool = False,
) -> dict[str, Any]:
    """Equivariance PSNRs {kind: dB} of a StyleGAN3 generator G for the kinds in `metrics` (eq_t,
    eq_t_frac, eq_r).

    Sample i (i < num_samples) draws z and its transforms from a CPU torch.Generator seeded with
    seed + i (`draw_samples`), so results do not depend on `batch` or the device; class-conditional
    generators use class (seed + i) % c_dim. w = mapping(z, c) without truncation. The transformed
    input goes through `synthesis.input.transform`; the output of the untransformed input is
    transformed by `transform_images` (eq_t: exact whole-pixel shift; eq_t_frac, eq_r: Lanczos
    interpolation over lanczos_radius pixels either way), and pixels whose source lies (partly)
    outside the image are left out. Images are compared as generated (float, not clamped or
    quantised). Sample i's MSE is the mean over channels and its valid pixels; the PSNR is
    10 log10(2^2 / mean of the MSEs), the expectation inside the logarithm as in the paper.

    translate_max: offsets up to this fraction of the image size along each axis; rotate_max: angles
    up to this many degrees either way. lanczos_radius: a larger one resamples content near Nyquist
    more exactly, at (2 radius)^2 taps per pixel for eq_r and 4 radius for eq_t_frac. batch: samples
    per step (1 + len(metrics) syntheses each). device: where the latents go (default: G's).

    Returns {kind: dB}; with return_errors also "errors": {kind: per-sample MSE, float64 numpy}.
    """
    kinds = list(dict.fromkeys(metrics))
    check_arguments(kinds, num_samples, translate_max, rotate_max, lanczos_radius, batch)
    check_generator(G, kinds)
    device = torch.device(device) if device is not None else next(G.parameters()).device
    seeds = range(seed, seed + num_samples)
    transform = (translate_max, rotate_max, lanczos_radius)
    errors = equivariance_errors(G, seeds, kinds, *transform, batch, device)
    result: dict[str, Any] = {kind: psnr_from_errors(errors[kind]) for kind in kinds}
    if return_errors:
        result["errors"] = {kind: value.numpy() for kind, value in errors.items()}
    return result
