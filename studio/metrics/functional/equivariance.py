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
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.metrics.functional.bandlimited_rotation import PERIOD_RADIUS, pseudo_rotate, rotate_bandlimited
from studio.metrics.functional.generator_precision import float32_generator
from studio.metrics.functional.resampling import transform_images
from studio.sampling import class_labels

KINDS = ("eq_t", "eq_t_frac", "eq_r")
I_MAX = 2.0  # the intended dynamic range [-1, 1]
# paper: the paper's definition with studio's resampling (Lanczos-8, per-sample MSEs averaged);
# nvlabs: NVlabs' reference metric (Lanczos-3, EQ-R by band-limited rotation and pseudo-rotation,
# squared errors pooled over all samples). docs/metrics.md, Equivariance.
EQUIVARIANCE_PROTOCOLS = ("paper", "nvlabs")
LANCZOS_RADIUS = {"paper": 8, "nvlabs": 3}


def protocol_radius(lanczos_radius: int | None, protocol: str) -> int:
    """The Lanczos radius used: lanczos_radius, or the protocol's (LANCZOS_RADIUS) when None."""
    return LANCZOS_RADIUS[protocol] if lanczos_radius is None else lanczos_radius


def check_arguments(
    kinds: Sequence[str],
    num_samples: int,
    translate_max: float,
    rotate_max: float,
    lanczos_radius: int | None,
    batch: int,
    protocol: str = "paper",
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
    if lanczos_radius is not None and not (isinstance(lanczos_radius, int) and lanczos_radius >= 1):
        raise ValueError(
            "lanczos_radius must be an integer >= 1 (pixels) or None (the protocol's), "
            f"got {lanczos_radius!r}"
        )
    if protocol not in EQUIVARIANCE_PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(EQUIVARIANCE_PROTOCOLS)}, got {protocol!r}")
    if protocol == "nvlabs" and lanczos_radius is not None and 2 * lanczos_radius >= PERIOD_RADIUS:
        raise ValueError(
            f"lanczos_radius must be < {PERIOD_RADIUS // 2} under protocol 'nvlabs' (its filters are "
            f"designed on a {2 * PERIOD_RADIUS}-px period, as NVlabs'), got {lanczos_radius}"
        )
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
    protocol: str,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """{kind: [len(seeds), 2] float64 on the CPU: per sample, the sum over colour channels and valid
    pixels of (g(t[z0]) - t[g(z0)])^2, and the number of terms in it}. The untransformed images are
    synthesised once and shared by the kinds. protocol "nvlabs" measures eq_r as NVlabs does: the
    band-limited rotation of g(z0) against the pseudo-rotation of g(t[z0]) (bandlimited_rotation)."""
    z, transforms = draw_samples(G, seeds, translate_max, rotate_max)
    dtype = next(G.parameters()).dtype
    c = class_labels(G, seeds)
    c = None if c is None else c.to(device=device, dtype=dtype)
    ws = G.mapping(z.to(device=device, dtype=dtype), c)
    images = G.synthesis(ws, noise_mode="const")
    errors = {}
    for kind in kinds:
        moved_output = transformed_synthesis(G, ws, transforms[kind])
        if kind == "eq_r" and protocol == "nvlabs":
            moved_image, valid = rotate_bandlimited(images, transforms[kind], lanczos_radius)
            moved_output, output_valid = pseudo_rotate(moved_output, transforms[kind], lanczos_radius)
            valid = valid & output_valid
        else:
            radius = 0 if kind == "eq_t" else lanczos_radius
            moved_image, valid = transform_images(images, transforms[kind], radius)
        squared = (moved_output - moved_image).double().square() * valid
        count = valid.sum(dim=(1, 2, 3)) * images.shape[1]
        if (count == 0).any():
            raise ValueError(
                f"{kind}: a transformed {G.img_resolution}x{G.img_resolution} image has no valid pixel "
                "left; lower translate_max, rotate_max or lanczos_radius"
            )
        errors[kind] = torch.stack([squared.sum(dim=(1, 2, 3)), count.double()], dim=1).cpu()
    return errors


def equivariance_errors(
    G: nn.Module,
    seeds: Sequence[int],
    kinds: Sequence[str],
    translate_max: float,
    rotate_max: float,
    lanczos_radius: int | None,
    batch: int,
    device: torch.device,
    protocol: str = "paper",
) -> dict[str, torch.Tensor]:
    """{kind: [len(seeds), 2] float64 on the CPU (per-sample sum of squared errors, number of terms)},
    `batch` samples at a time. lanczos_radius None: the protocol's (LANCZOS_RADIUS). Each sample is
    seeded by its own seed, so a contiguous slice of the seeds gives the same values as the whole
    (processes can split the samples). G runs in float32 throughout (float32_generator), as NVlabs'
    eqt50k/eqr50k force it: fp16's and TF32's 1e-3 relative errors would swamp equivariance errors of
    60 dB and more."""
    radius = protocol_radius(lanczos_radius, protocol)
    transform = (translate_max, rotate_max, radius, protocol)
    with float32_generator(G):
        chunks = [
            batch_errors(G, seeds[start : start + batch], kinds, *transform, device)
            for start in range(0, len(seeds), batch)
        ]
    empty = torch.zeros(0, 2, dtype=torch.float64)
    return {kind: torch.cat([chunk[kind] for chunk in chunks]) if chunks else empty for kind in kinds}


def psnr_from_errors(errors: np.ndarray | torch.Tensor, protocol: str = "paper") -> float:
    """PSNR in dB of per-sample (sum of squared errors, number of terms) rows [n, 2]:
    10 log10(I_max^2 / MSE), MSE = the mean of the per-sample MSEs (paper) or all squared errors pooled,
    sum / count (nvlabs); +inf for a zero MSE. Non-finite errors are an error (a diverged or
    fp16-overflowing generator)."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[1] != 2:
        raise ValueError(
            "errors must be per-sample rows (sum of squared errors, number of terms) of shape [n, 2], "
            f"as equivariance_errors returns them; got shape {list(errors.shape)}"
        )
    bad = int((~np.isfinite(errors[:, 0])).sum())
    if bad:
        raise ValueError(f"{bad} of {len(errors)} equivariance errors are NaN or Inf; check the generator")
    sums, counts = errors[:, 0], errors[:, 1]
    mse = float(sums.sum() / counts.sum() if protocol == "nvlabs" else (sums / counts).mean())
    return math.inf if mse == 0 else 10 * math.log10(I_MAX**2 / mse)


def equivariance(
    G: nn.Module,
    metrics: Sequence[str] = KINDS,
    num_samples: int = 50000,
    translate_max: float = 0.125,
    rotate_max: float = 180.0,
    lanczos_radius: int | None = None,
    batch: int = 16,
    seed: int = 0,
    protocol: str = "paper",
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
    quantised). protocol "paper": sample i's MSE is the mean over channels and its valid pixels, the
    PSNR 10 log10(2^2 / mean of the MSEs), the expectation inside the logarithm as in the paper.
    protocol "nvlabs": NVlabs' reference metric: eq_r compares the band-limited rotation of the image
    with the pseudo-rotation of the rotated synthesis (bandlimited_rotation), and the squared errors of
    all samples are pooled.

    translate_max: offsets up to this fraction of the image size along each axis; rotate_max: angles
    up to this many degrees either way. lanczos_radius: the Lanczos window in pixels (None: 8 under
    paper, NVlabs' 3 under nvlabs); a larger one resamples content near Nyquist more exactly, at
    (2 radius)^2 taps per pixel for eq_r under paper ((8 radius - 1)^2-tap x4 upsampling filters under
    nvlabs) and 4 radius for eq_t_frac. batch: samples per step
    (1 + len(metrics) syntheses each). device: where the latents go (default: G's).

    Returns {kind: dB}; with return_errors also "errors": {kind: per-sample MSE, float64 numpy}.
    """
    kinds = list(dict.fromkeys(metrics))
    check_arguments(kinds, num_samples, translate_max, rotate_max, lanczos_radius, batch, protocol)
    check_generator(G, kinds)
    device = torch.device(device) if device is not None else next(G.parameters()).device
    seeds = range(seed, seed + num_samples)
    transform = (translate_max, rotate_max, lanczos_radius)
    errors = equivariance_errors(G, seeds, kinds, *transform, batch, device, protocol)
    result: dict[str, Any] = {kind: psnr_from_errors(errors[kind], protocol) for kind in kinds}
    if return_errors:
        result["errors"] = {kind: (value[:, 0] / value[:, 1]).numpy() for kind, value in errors.items()}
    return result
