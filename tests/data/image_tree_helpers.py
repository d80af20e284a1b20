"""Builders of tiny image trees for the data tests: one file per colour mode, nested directories."""

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

R = 8


def rgb_pixels(seed: int, size: tuple[int, int] = (R, R)) -> np.ndarray:
    """Random uint8 [H, W, 3] for an image of size (W, H)."""
    return np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)


def make_parent(path: Path) -> Path:
    """Create path's parent directories; return path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(make_parent(path))


def zip_tree(root: Path, zip_path: Path, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Zip every file under root with '/'-separated names relative to root (hidden ones included)."""
    with zipfile.ZipFile(zip_path, "w", compression=compression) as archive:
        for file in sorted(root.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(root).as_posix())
    return zip_path
