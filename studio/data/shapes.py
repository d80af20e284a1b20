"""Procedural "shapes" dataset: coloured shapes on tinted backgrounds, rendered on the fly from a seed.

A known, finite set of modes (4 shapes x 4 colours = 16) makes mode coverage and mode collapse directly
measurable, while continuous nuisance variation (position, size, rotation, colour jitter, background tint
and gradient) keeps the images from being trivially memorable.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch.utils.data import Dataset

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = ("red", "green", "blue", "yellow")
# Saturated RGB in [0, 1]; backgrounds are low-saturation and at most mid-grey, so every shape stands out.
PALETTE = np.array(
    [[0.90, 0.15, 0.15], [0.15, 0.80, 0.25], [0.20, 0.35, 0.95], [0.95, 0.85, 0.15]], dtype=np.float32
)
# Bump when the rendering changes so that fingerprints (and caches keyed on them) change too.
RENDER_VERSION = 1


def _shape_sdf(shape: int, u: np.ndarray, v: np.ndarray, size: float) -> np.ndarray:
    """Signed distance (negative inside) to a shape centred at 0 in its own rotated frame.

    u, v: [R, R] local coordinates in the image's [-1, 1] units; size: circumradius-like scale.
    Polygons use max-of-half-planes distances: exact along edges, which is all anti-aliasing needs.
    """
    if shape == 0:  # circle
        return np.sqrt(u * u + v * v) - 0.80 * size
    if shape == 1:  # square
        return np.maximum(np.abs(u), np.abs(v)) - 0.68 * size
    if shape == 2:  # equilateral triangle, inradius half the circumradius
        angles = np.pi / 2 + 2 * np.pi / 3 * np.arange(3)
        planes = [u * np.cos(a) + v * np.sin(a) for a in angles]
        return np.maximum(np.maximum(planes[0], planes[1]), planes[2]) - 0.5 * size
    half_len, half_width = 0.85 * size, 0.28 * size  # cross: union of two bars
    bar_h = np.maximum(np.abs(u) - half_len, np.abs(v) - half_width)
    bar_v = np.maximum(np.abs(u) - half_width, np.abs(v) - half_len)
    return np.minimum(bar_h, bar_v)


def pixel_axis(resolution: int) -> np.ndarray:
    """Pixel-centre coordinates in [-1, 1] image units, float32 [R]; pixel j spans [j, j + 1] * 2 / R - 1."""
    return (np.arange(resolution, dtype=np.float32) + 0.5) * (2.0 / resolution) - 1.0


def shape_coverage(shape: int, centre: np.ndarray, size: float, angle: float, resolution: int) -> np.ndarray:
    """Fraction of each pixel covered by the shape, float32 [R, R] (rows = y, pointing down).

    The shape is rotated by `angle` (radians) about `centre` (x, y in [-1, 1] units). Coverage is the
    signed distance in pixel units clipped to [0, 1]: a one-pixel box filter, i.e. analytic anti-aliasing.
    """
    axis = pixel_axis(resolution)
    dx = axis[None, :] - centre[0]
    dy = axis[:, None] - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    sdf = _shape_sdf(shape, cos * dx + sin * dy, -sin * dx + cos * dy, size)
    return np.clip(0.5 - sdf * (resolution / 2.0), 0.0, 1.0).astype(np.float32)


def render_shape_image(
    mode: int, rng: np.random.Generator, resolution: int, object_scale: float = 1.0
) -> np.ndarray:
    """Render one image of `mode` (shape = mode // 4, colour = mode % 4) with nuisances drawn from rng.

    object_scale in (0, 2] scales the shape's size (0.30-0.50 image half-widths at 1) and shrinks the range
    of its centre (+-0.35 at 1, 0 at 2) so that large shapes stay in the frame.
    Returns uint8 [3, R, R]: a tinted background with a linear gradient, the shape alpha-blended on it.
    """
    shape, colour = divmod(mode, len(COLOURS))
    centre = rng.uniform(-0.35, 0.35, size=2) * (2.0 - object_scale)
    size = rng.uniform(0.30, 0.50) * object_scale
    angle = rng.uniform(0.0, 2 * np.pi)
    fg = np.clip(PALETTE[colour] + rng.uniform(-0.06, 0.06, size=3), 0.0, 1.0)
    bg_level = rng.uniform(0.05, 0.50)
    bg_tint = rng.uniform(-0.08, 0.08, size=3)
    grad_angle = rng.uniform(0.0, 2 * np.pi)
    grad_amp = rng.uniform(0.0, 0.15)

    coverage = shape_coverage(shape, centre, size, angle, resolution)[None]  # [1, R, R]
    axis = pixel_axis(resolution)
    gradient = grad_amp * (np.cos(grad_angle) * axis[None, :] + np.sin(grad_angle) * axis[:, None])
    bg = np.clip(bg_level + bg_tint[:, None, None] + gradient[None], 0.0, 1.0)  # [3, R, R]
    image = bg * (1.0 - coverage) + fg[:, None, None] * coverage
    return np.rint(image * 255.0).astype(np.uint8)


class ShapesDataset(Dataset):
    """Deterministic procedural images: coloured shapes on backgrounds, generated on the fly from a seed.

    Item i is (image uint8 [3, R, R], label int64 scalar = mode index). Mode of item i is i % num_modes
    (exactly balanced when size is a multiple of num_modes); nuisances come from an RNG seeded with
    (seed, i), so an item does not depend on access order, worker process or other items.
    With xflip, len doubles and item i >= size is item i - size mirrored horizontally.
    """

    num_channels = 3

    def __init__(
        self,
        resolution: int = 32,
        size: int = 10_000,
        seed: int = 0,
        use_labels: bool = False,
        xflip: bool = False,
        object_scale: float = 1.0,
    ) -> None:
        if resolution < 4:
            raise ValueError(f"ShapesDataset: resolution must be >= 4 pixels, got {resolution}.")
        if size < 1:
            raise ValueError(f"ShapesDataset: size must be >= 1 image, got {size}.")
        if seed < 0:
            raise ValueError(f"ShapesDataset: seed must be a non-negative integer, got {seed}.")
        if not 0.0 < object_scale <= 2.0:
            raise ValueError(f"ShapesDataset: object_scale must be in (0, 2], got {object_scale}.")
        self.resolution = int(resolution)
        self.size = int(size)
        self.seed = int(seed)
        self.use_labels = bool(use_labels)
        self.xflip = bool(xflip)
        self.object_scale = float(object_scale)
        self.num_modes = len(SHAPES) * len(COLOURS)
        self.num_classes = self.num_modes if self.use_labels else 0

    def __len__(self) -> int:
        return self.size * 2 if self.xflip else self.size

    def _check_index(self, i: int) -> int:
        if not -len(self) <= i < len(self):
            raise IndexError(f"ShapesDataset index {i} out of range for length {len(self)}.")
        return i % len(self)

    def mode_of(self, i: int) -> int:
        """Mode index of item i, without rendering."""
        return (self._check_index(i) % self.size) % self.num_modes

    @staticmethod
    def mode_name(mode: int) -> str:
        """Human-readable name of a mode, e.g. 'red circle'."""
        shape, colour = divmod(mode, len(COLOURS))
        return f"{COLOURS[colour]} {SHAPES[shape]}"

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = self._check_index(i)
        base = i % self.size
        mode = base % self.num_modes
        rng = np.random.default_rng([self.seed, base])
        image = render_shape_image(mode, rng, self.resolution, self.object_scale)
        if i >= self.size:
            image = image[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(image)), torch.tensor(mode, dtype=torch.int64)

    def fingerprint(self) -> str:
        """sha256 of (class name, render version, parameters that change the images)."""
        params = {
            "class": type(self).__name__,
            "render_version": RENDER_VERSION,
            "resolution": self.resolution,
            "size": self.size,
            "seed": self.seed,
            "xflip": self.xflip,
        }
        if self.object_scale != 1.0:  # absent at 1: fingerprints (and caches) from before it stay valid
            params["object_scale"] = self.object_scale
        return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()

    def __repr__(self) -> str:
        return (
            f"ShapesDataset(resolution={self.resolution}, size={self.size}, seed={self.seed}, "
            f"use_labels={self.use_labels}, xflip={self.xflip}, object_scale={self.object_scale})"
        )
