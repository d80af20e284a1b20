"""ImageFolderDataset: PNG/JPEG/WebP images from a folder (recursively) or a .zip archive."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from studio.data.image_io import IMAGE_EXTENSIONS, RESIZE_MODES, resize_square, to_rgb_array
from studio.data.image_sources import FolderSource, ZipSource, open_source

LABELS_FILE = "dataset.json"


class CorruptImageError(ValueError):
    """An image file that cannot be identified or decoded."""


def _corrupt(where: str, err: Exception) -> CorruptImageError:
    return CorruptImageError(
        f"Cannot read image {where}: {err}. The file is corrupt, truncated or not an image; "
        "re-export it or remove it from the dataset."
    )


def wrong_size_message(
    where: str, size: tuple[int, int], resolution: int, origin: str, option_prefix: str = "data."
) -> str:
    """Error text for an image whose size does not match the dataset resolution."""
    w, h = size
    return (
        f"Image {where} is {w}x{h}, but the dataset resolution is {resolution}x{resolution} ({origin}). "
        f"All images must be square and of that size. Fix: set {option_prefix}resize=lanczos|bilinear|"
        "center_crop to resize on the fly, "
        f"or preprocess the images to {resolution}x{resolution}."
    )


class ImageFolderDataset(Dataset):
    """Images from a folder (recursive) or a .zip, as (uint8 [3, R, R], int64 label scalar).

    The label is -1 unless use_labels=True, in which case it comes from `dataset.json` at the root
    ({"labels": [["relative/path.png", 3], ...]}). Files are sorted by relative path; max_size keeps
    the first max_size of them. With xflip, len doubles and item i >= N is item i - N mirrored.
    All image headers are read at construction so that wrong sizes and unreadable files fail early.
    """

    num_channels = 3

    def __init__(
        self,
        path: str | os.PathLike,
        resolution: int | None = None,
        resize: str | None = None,
        use_labels: bool = False,
        xflip: bool = False,
        max_size: int | None = None,
        option_prefix: str = "data.",
    ) -> None:
        p = self._option_prefix = option_prefix  # how the caller's config names these options, for errors
        if resize is not None and resize not in RESIZE_MODES:
            raise ValueError(f"Unknown resize mode {resize!r}; choose one of {', '.join(RESIZE_MODES)}.")
        if resize is not None and resolution is None:
            raise ValueError(f"{p}resize={resize} needs a target size: set {p}resolution as well.")
        if resolution is not None and resolution < 1:
            raise ValueError(f"{p}resolution must be a positive number of pixels, got {resolution}.")
        if max_size is not None and max_size < 1:
            raise ValueError(f"{p}max_size must be >= 1 (or null for all images), got {max_size}.")
        self.path = os.fspath(path)
        self.resize = resize
        self.use_labels = bool(use_labels)
        self.xflip = bool(xflip)
        self.max_size = max_size
        self._source: FolderSource | ZipSource = open_source(path)

        names = self._source.list_images()
        if not names:
            where = "zip archive" if self._source.kind == "zip" else "folder"
            raise ValueError(
                f"No images found in {where} '{self.path}' (searched recursively for files ending in "
                f"{', '.join(IMAGE_EXTENSIONS)}, case-insensitive; hidden files are skipped)."
            )
        self._names = names[:max_size] if max_size is not None else names
        self._fingerprint: str | None = None
        self.resolution = self._check_sizes(resolution)
        self._labels = np.full(len(self._names), -1, np.int64)
        self.num_classes = 0
        if self.use_labels:
            self._labels, self.num_classes = self._load_labels()

    @property
    def image_names(self) -> list[str]:
        """Relative '/'-separated names of the images, in dataset order (before xflip)."""
        return list(self._names)

    def _header_size(self, name: str) -> tuple[int, int]:
        try:
            with self._source.open_header(name) as f, Image.open(f) as image:
                return image.size
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise _corrupt(self._source.describe(name), err) from err

    def _check_sizes(self, resolution: int | None) -> int:
        """Read every header; return the resolution or raise naming the first offending file."""
        p = self._option_prefix
        sizes = [self._header_size(name) for name in self._names]
        if self.resize == "center_crop":
            return int(resolution)
        if self.resize is not None:
            bad = [i for i, (w, h) in enumerate(sizes) if w != h]
            if bad:
                w, h = sizes[bad[0]]
                raise ValueError(
                    f"Image {self._source.describe(self._names[bad[0]])} is {w}x{h}, not square "
                    f"({len(bad)} of {len(sizes)} images are not square); {p}resize={self.resize} "
                    f"would distort it. Fix: set {p}resize=center_crop, or preprocess the images."
                )
            return int(resolution)
        if resolution is None:
            resolution = sizes[0][0]
            origin = f"set by the first image, {self._names[0]}, as {p}resolution is not given"
        else:
            origin = f"{p}resolution={resolution}"
        bad = [i for i, size in enumerate(sizes) if size != (resolution, resolution)]
        if bad:
            message = wrong_size_message(
                self._source.describe(self._names[bad[0]]), sizes[bad[0]], resolution, origin, p
            )
            raise ValueError(f"{message} ({len(bad)} of {len(sizes)} images have a wrong size.)")
        return int(resolution)

    def _load_labels(self) -> tuple[np.ndarray, int]:
        """Labels of the used images, int64 [N], and num_classes = largest label in the file + 1."""
        raw = self._source.read_root_file(LABELS_FILE)
        where = self._source.describe(LABELS_FILE)
        if raw is None:
            raise ValueError(
                f"use_labels=True but there is no {LABELS_FILE} at the root of '{self.path}'. Add one "
                '(format: {"labels": [["relative/path.png", 3], ...]}) or set data.use_labels=false.'
            )
        try:
            entries = json.loads(raw)["labels"]
            table = {str(name).replace("\\", "/"): label for name, label in entries}
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"{where} is not a valid label file ({err}). Expected "
                '{"labels": [["relative/path.png", 3], ...]} with integer class labels.'
            ) from err
        for name, label in table.items():
            if isinstance(label, bool) or not isinstance(label, int) or label < 0:
                raise ValueError(
                    f"{where}: label of {name} is {label!r}; only non-negative integer class labels "
                    "are supported."
                )
        missing = [name for name in self._names if name not in table]
        if missing:
            raise ValueError(
                f"{where} has no label for {missing[0]} ({len(missing)} of {len(self._names)} images "
                "unlabeled). Label every image or set data.use_labels=false."
            )
        labels = np.array([table[name] for name in self._names], dtype=np.int64)
        return labels, max(table.values()) + 1

    def __len__(self) -> int:
        return len(self._names) * 2 if self.xflip else len(self._names)

    def _read_rgb(self, name: str) -> np.ndarray:
        where = self._source.describe(name)
        try:
            with self._source.open(name) as f, Image.open(f) as image:
                image.load()
                rgb = to_rgb_array(image)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise _corrupt(where, err) from err
        if self.resize is not None:
            return resize_square(rgb, self.resolution, self.resize)
        h, w = rgb.shape[:2]
        if (w, h) != (self.resolution, self.resolution):  # the file changed since construction
            raise ValueError(
                wrong_size_message(
                    where, (w, h), self.resolution, "read at construction", self._option_prefix
                )
            )
        return rgb

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"ImageFolderDataset index {i} out of range for length {len(self)}.")
        i %= len(self)
        base = i % len(self._names)
        chw = self._read_rgb(self._names[base]).transpose(2, 0, 1)
        if i >= len(self._names):
            chw = chw[:, :, ::-1]
        image = torch.from_numpy(np.ascontiguousarray(chw))
        return image, torch.tensor(self._labels[base], dtype=torch.int64)

    def fingerprint(self) -> str:
        """sha256 over the used files' content descriptors plus the options that change the images.

        Zip: (member name, CRC32, size) from the zip directory. Folder: (relative path, size, mtime_ns).
        The dataset's location is not included, so moving a zip keeps its fingerprint. Computed once per
        dataset object (training and the feature cache both ask; a large folder is stat'ed once).
        """
        if self._fingerprint is None:
            self._fingerprint = self._content_digest()
        return self._fingerprint

    def _content_digest(self) -> str:
        digest = hashlib.sha256()
        header = {
            "class": type(self).__name__,
            "kind": self._source.kind,
            "resolution": self.resolution,
            "resize": self.resize,
            "xflip": self.xflip,
        }
        digest.update(json.dumps(header, sort_keys=True).encode())
        for entry in self._source.content_entries(self._names):
            digest.update(b"\n" + entry.encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (
            f"ImageFolderDataset(path={self.path!r}, resolution={self.resolution}, resize={self.resize!r}, "
            f"use_labels={self.use_labels}, xflip={self.xflip}, max_size={self.max_size}, "
            f"images={len(self._names)})"
        )
