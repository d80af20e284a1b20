"""Fixtures for the data tests: tiny image trees in tmp_path."""

from pathlib import Path

import numpy as np
import pytest
from image_tree_helpers import R, make_parent, rgb_pixels, save_png
from PIL import Image


@pytest.fixture
def mixed_tree(tmp_path: Path) -> Path:
    """Folder with RGB, JPEG, WebP, L, I;16, RGBA, palette and palette+transparency images, nested,
    with an upper-case extension, a hidden file and a non-image file that must both be ignored."""
    root = tmp_path / "images"
    save_png(root / "a_rgb.png", rgb_pixels(0))
    Image.fromarray(rgb_pixels(1)).save(make_parent(root / "b_photo.JPG"), quality=90)
    Image.fromarray(rgb_pixels(2)).save(make_parent(root / "c_lossless.webp"), lossless=True)
    gray = np.arange(R * R, dtype=np.uint8).reshape(R, R) * 3
    save_png(root / "sub" / "d_gray.png", gray)
    wide = (np.arange(R * R, dtype=np.uint16).reshape(R, R) * 1000).astype(np.uint16)
    Image.fromarray(wide).save(make_parent(root / "sub" / "e_gray16.png"))
    rgba = np.concatenate([rgb_pixels(3), np.full((R, R, 1), 128, np.uint8)], axis=2)
    rgba[0, 0] = [200, 100, 50, 128]
    rgba[0, 1] = [255, 255, 255, 0]
    save_png(root / "sub" / "deeper" / "f_rgba.png", rgba)
    palette = Image.fromarray(rgb_pixels(4)).quantize(colors=16)
    palette.save(make_parent(root / "sub" / "deeper" / "g_palette.png"))
    transparent = palette.copy()
    transparent.info["transparency"] = 0
    transparent.save(make_parent(root / "h_palette_transparent.PNG"), transparency=0)
    (root / "notes.txt").write_text("not an image")
    save_png(root / ".hidden.png", rgb_pixels(5))
    save_png(root / ".cache" / "x.png", rgb_pixels(6))
    return root


@pytest.fixture
def rgb_folder(tmp_path: Path) -> Path:
    """Six 8x8 RGB PNGs: three at the root, three in a subfolder."""
    root = tmp_path / "rgb"
    for i in range(3):
        save_png(root / f"img{i}.png", rgb_pixels(10 + i))
        save_png(root / "sub" / f"img{i}.png", rgb_pixels(20 + i))
    return root
