"""Perceptual Path Length (Karras et al. 2019, "A style-based generator architecture for GANs", Sec. 3.2;
used with sampling="end" in W by StyleGAN2, Karras et al. 2020).

PPL = E[ d(G(p(t)), G(p(t + eps))) / eps^2 ] over random paths p between two latents: the image
distance d (LPIPS in the papers) is quadratic in small changes, hence the division by eps^2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.metrics.functional.generator_precision import float32_generator
from studio.sampling import class_labels

SPACES = ("w", "z")
SAMPLINGS = ("full", "end")
MAX_RESOLUTION = 256

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the directions of a, b [N, D] at t [N]: unit vectors [N, D]."""
    a, b = _normalize(a), _normalize(b)
    cos = (a * b).sum(dim=-1, keepdim=True)
    angle = t.unsqueeze(-1) * torch.acos(cos.clamp(-1, 1))
    # Rotate a towards b within their plane by t times the angle between them.
    ortho = _normalize(b - cos * a)
    return _normalize(a * torch.cos(angle) + ortho * torch.sin(angle))


def path_endpoints(
    G: nn.Module, seeds: range, sampling: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z0, z1 [N, z_dim], t [N]) on the CPU in float32; sample i draws z0, z1, t in this order from a
    torch.Generator seeded with seeds[i], so z0 is the latent studio.sampling gives image seeds[i]."""
    z0, z1, t = [], [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(s)
        z0.append(torch.randn(G.z_dim, generator=gen))
        z1.append(torch.randn(G.z_dim, generator=gen))
        t.append(torch.rand((), generator=gen))
    t_all = torch.stack(t)
    return torch.stack(z0), torch.stack(z1), t_all if sampling == "full" else torch.zeros_like(t_all)


def prepare_images(images: torch.Tensor, crop: bool) -> torch.Tensor:
    """Generator output [N, C, R, R] -> [N, 3, <=256, <=256] as the distance sees it.

    crop: the FFHQ face crop of the StyleGAN evaluation, rows [3R/8, 7R/8) and columns [2R/8, 6R/8)
    (R/8 rounded down). Larger images are then area-downsampled (box average; for the integer factors of
    power-of-two resolutions it is exact block averaging) to 256 x 256. Grayscale is repeated to RGB.
    Values are not clamped or quantised: both would hide the eps-sized change being measured.
    """
    if crop:
        c = images.shape[2] // 8
        images = images[:, :, 3 * c : 7 * c, 2 * c : 6 * c]
    if max(images.shape[2:]) > MAX_RESOLUTION:
        h, w = images.shape[2:]
        scale = MAX_RESOLUTION / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        images = nn.functional.interpolate(images, size=size, mode="area")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images


def check_arguments(num_samples: int, epsilon: float, space: str, sampling: str, batch: int) -> None:
    if space not in SPACES:
        raise ValueError(f"space must be 'w' or 'z', got {space!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be 'full' or 'end', got {sampling!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")


@torch.no_grad()
def path_distances(
    G: nn.Module,
    distance: Distance,
    seeds: range,
    epsilon: float,
    space: str,
    sampling: str,
    crop: bool,
    device: torch.device,
) -> torch.Tensor:
    """d(img(t), img(t + eps)) / eps^2 [len(seeds)] (float64, CPU) for the paths of `seeds`."""
    z0, z1, t = path_endpoints(G, seeds, sampling)
    dtype = next(G.parameters()).dtype
    z0, z1, t = (x.to(device=device, dtype=dtype) for x in (z0, z1, t))
    c = class_labels(G, seeds)
    c = None if c is None else c.to(device=device, dtype=dtype)
    if space == "w":
        w0, w1 = G.mapping(z0, c), G.mapping(z1, c)
        tw = t.view(-1, 1, 1)
        ws_a, ws_b = torch.lerp(w0, w1, tw), torch.lerp(w0, w1, tw + epsilon)
    else:
        ws_a, ws_b = G.mapping(slerp(z0, z1, t), c), G.mapping(slerp(z0, z1, t + epsilon), c)
    images = G.synthesis(torch.cat([ws_a, ws_b]), noise_mode="const")
    images = prepare_images(images, crop)
    n = len(seeds)
    d = distance(images[:n], images[n:]).reshape(n)
    return d.double().cpu() / epsilon**2


def perceptual_path_length(
    G: nn.Module,
    distance: Distance,
    num_samples: int = 50000,
    epsilon: float = 1e-4,
    space: str = "w",
    sampling: str = "end",
    crop: bool = False,
    batch: int = 64,
    seed: int = 0,
    device: torch.device | str | None = None,
    percentile_methods: tuple[str, str] = ("lower", "higher"),
    return_distances: bool = False,
) -> dict[str, Any]:
    """Perceptual path length of generator G (mapping(z, c) -> ws, synthesis(ws, noise_mode)).

    Sample i (i < num_samples) draws z0, z1 [z_dim] and t ~ U[0, 1) from a CPU torch.Generator seeded
    with seed + i (sampling="end": t = 0), so the result does not depend on `batch` or the device;
    class-conditional generators use class (seed + i) % c_dim for both ends. space="w": lerp of
    w0 = mapping(z0, c), w1 = mapping(z1, c) at t and t + epsilon (broadcast to all num_ws); space="z":
    slerp of the unit directions of z0, z1, then mapping. Both images come from synthesis with
    noise_mode="const" and no truncation, then `prepare_images` (optional face crop, area downsampling
    to at most 256 x 256). distance(a, b) takes two [n, 3, H, W] batches in the generator's range
    (about [-1, 1]) and returns [n] (e.g. studio.features.lpips.lpips_vgg()). Per-sample value
    d_i = distance / epsilon^2 (float64). batch: paths per step (2 * batch images are synthesised at
    once). device: where the latents are put (default: G's); G and distance must already be there.

    Returns {"ppl": mean of the d_i with lo <= d_i <= hi, lo/hi = the 1st/99th percentiles of all d_i
    (numpy.percentile with `percentile_methods` for lo and hi; the default ("lower", "higher") is the
    StyleGAN/StyleGAN2 evaluation's, so both bounds are samples), "ppl_num_samples": how many d_i were
    kept}; with return_distances also "distances": all d_i, float64 numpy [num_samples].
    Defaults are StyleGAN2's protocol (W, "end", 50000 samples, eps 1e-4, no crop); StyleGAN's tables use
    100000 samples and crop=True. In float32 the eps-sized image difference carries round-off of a few
    1e-3 relative per sample (batch sizes agree to that level); in float64 (G.double(),
    distance.double()) to ~1e-11.
    """
    check_arguments(num_samples, epsilon, space, sampling, batch)
    device = torch.device(device) if device is not None else next(G.parameters()).device
    seeds = range(seed, seed + num_samples)
    distances = path_length_distances(
        G, distance, seeds, epsilon, space, sampling, crop, batch, device
    ).numpy()
    result = ppl_from_distances(distances, percentile_methods)
    if return_distances:
        result["distances"] = distances
    return result


def path_length_distances(
    G: nn.Module,
    distance: Distance,
    seeds: range,
    epsilon: float,
    space: str,
    sampling: str,
    crop: bool,
    batch: int,
    device: torch.device,
) -> torch.Tensor:
    """The per-sample d_i of `perceptual_path_length` for the paths of `seeds`, `batch` paths at a time;
    float64 [len(seeds)] on the CPU. A contiguous slice of the seeds gives the same d_i as the whole
    (each path is seeded by its own index), so processes can split the samples. G and the distance run
    in float32 throughout (float32_generator, as NVlabs' PPL forces it): fp16 or TF32 round-off would
    swamp the epsilon-step image differences the metric measures."""
    with float32_generator(G):
        chunks = [
            path_distances(G, distance, seeds[start : start + batch], epsilon, space, sampling, crop, device)
            for start in range(0, len(seeds), batch)
        ]
    return torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.float64)


def ppl_from_distances(
    distances: np.ndarray, percentile_methods: Sequence[str] = ("lower", "higher")
) -> dict[str, Any]:
    """{"ppl": mean of the d_i between the 1st and 99th percentiles (inclusive; numpy.percentile with
    `percentile_methods` for the two bounds), "ppl_num_samples": how many were kept}; non-finite d_i
    are an error."""
    bad = int((~np.isfinite(distances)).sum())
    if bad:
        raise ValueError(
            f"{bad} of {distances.size} path distances are NaN or Inf; check the generator (diverged, fp16 "
            "overflow) and the distance"
        )
    lo = np.percentile(distances, 1, method=percentile_methods[0])
    hi = np.percentile(distances, 99, method=percentile_methods[1])
    kept = distances[(distances >= lo) & (distances <= hi)]
    return {"ppl": float(kept.mean()), "ppl_num_samples": int(kept.size)}
