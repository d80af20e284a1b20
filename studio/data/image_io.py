"""Decoding image files to uint8 RGB tensors: explicit colour-mode conversion and optional resizing."""

from __future__ import annotations

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
RESIZE_MODES = ("lanczos", "bilinear", "center_crop")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def is_image_name(name: str) -> bool:
    """True for file names with an accepted image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _alpha_over_black(rgba: np.ndarray) -> np.ndarray:
    """[H, W, 4] uint8 -> [H, W, 3] uint8 composited on black: rgb * alpha / 255, rounded."""
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:].astype(np.uint32)
    return ((rgb * alpha + 127) // 255).astype(np.uint8)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert any PIL image to a uint8 RGB array [H, W, 3].

    Grayscale is replicated to 3 channels; 16/32-bit integer grayscale ("I;16", "I") is read as a
    0..65535 range and scaled to 8 bit by round(v / 257), clipping values outside that range.
    Images with alpha (RGBA, LA, PA, palette with transparency) are composited on black.
    """
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image).astype(np.float64)
        gray = np.rint(np.clip(wide, 0, 65535) / 257.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        return _alpha_over_black(np.asarray(image))
    return np.asarray(image.convert("RGB"))


def resize_square(image: np.ndarray, resolution: int, resize: str) -> np.ndarray:
    """Resize uint8 [H, W, 3] to [R, R, 3]. center_crop: crop the central square, then Lanczos."""
    pil = Image.fromarray(image)
    if resize == "center_crop":
        w, h = pil.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        pil = pil.crop((left, top, left + side, top + side))
    if pil.size != (resolution, resolution):
        resample = Image.Resampling.BILINEAR if resize == "bilinear" else Image.Resampling.LANCZOS
        pil = pil.resize((resolution, resolution), resample=resample)
    return np.asarray(pil)


def save_png(image: np.ndarray, path) -> None:
    """Write an HWC uint8 image (C = 1 or 3) as PNG; a single channel is saved as grayscale."""
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(path)
