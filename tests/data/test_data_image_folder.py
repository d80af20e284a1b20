"""ImageFolderDataset: folders and zips, colour-mode conversion, sizes, labels, errors, fingerprints."""

import json
import os
import pickle
import re
import shutil
import zipfile

import numpy as np
import pytest
import torch
from image_tree_helpers import R, rgb_pixels, save_png, zip_tree
from PIL import Image

from studio.data import CorruptImageError, ImageFolderDataset

MIXED_ORDER = [
    "a_rgb.png",
    "b_photo.JPG",
    "c_lossless.webp",
    "h_palette_transparent.PNG",
    "sub/d_gray.png",
    "sub/deeper/f_rgba.png",
    "sub/deeper/g_palette.png",
    "sub/e_gray16.png",
]


def _expected_mixed(root) -> dict[str, np.ndarray]:
    """Independent expectations, [H, W, 3] uint8, computed from the source arrays by hand."""
    gray = np.arange(R * R, dtype=np.uint8).reshape(R, R) * 3
    wide = np.arange(R * R, dtype=np.float64).reshape(R, R) * 1000
    rgba_rgb = rgb_pixels(3).astype(np.float64)
    rgba_rgb[0, 0] = [200, 100, 50]
    alpha = np.full((R, R, 1), 128.0)
    alpha[0, 1] = 0
    pal_img = Image.open(root / "sub/deeper/g_palette.png")
    palette = np.array(pal_img.getpalette(), dtype=np.uint8).reshape(-1, 3)
    indices = np.asarray(pal_img)
    transparent = palette[indices].copy()
    transparent[indices == 0] = 0
    return {
        "a_rgb.png": rgb_pixels(0),
        "b_photo.JPG": np.asarray(Image.open(root / "b_photo.JPG").convert("RGB")),
        "c_lossless.webp": rgb_pixels(2),
        "h_palette_transparent.PNG": transparent,
        "sub/d_gray.png": np.repeat(gray[..., None], 3, axis=2),
        "sub/deeper/f_rgba.png": np.rint(rgba_rgb * alpha / 255).astype(np.uint8),
        "sub/deeper/g_palette.png": palette[indices],
        "sub/e_gray16.png": np.repeat(np.rint(wide / 257).astype(np.uint8)[..., None], 3, axis=2),
    }


def _check_mixed(ds: ImageFolderDataset, root) -> None:
    assert ds.image_names == MIXED_ORDER
    assert len(ds) == 8 and ds.resolution == R and ds.num_channels == 3 and ds.num_classes == 0
    expected = _expected_mixed(root)
    for i, name in enumerate(MIXED_ORDER):
        image, label = ds[i]
        assert image.dtype == torch.uint8 and image.shape == (3, R, R)
        assert label.dtype == torch.int64 and int(label) == -1
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), expected[name], err_msg=name)


def test_folder_reads_every_colour_mode_as_rgb(mixed_tree):
    ds = ImageFolderDataset(str(mixed_tree))
    _check_mixed(ds, mixed_tree)
    rgba = ds[MIXED_ORDER.index("sub/deeper/f_rgba.png")][0]
    assert rgba[:, 0, 0].tolist() == [100, 50, 25]  # (200, 100, 50) at alpha 128 over black
    assert rgba[:, 0, 1].tolist() == [0, 0, 0]


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_gives_the_same_images_as_the_folder(mixed_tree, tmp_path, compression):
    archive = zip_tree(mixed_tree, tmp_path / "mixed.zip", compression)
    _check_mixed(ImageFolderDataset(archive), mixed_tree)


def test_zip_dataset_pickles_and_loads_in_worker_processes(rgb_folder, tmp_path):
    ds = ImageFolderDataset(zip_tree(rgb_folder, tmp_path / "rgb.zip"))
    direct = torch.stack([ds[i][0] for i in range(len(ds))])  # opens the archive in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3][0], direct[3])
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    assert torch.equal(torch.cat([images for images, _ in loader]), direct)


def test_resolution_from_first_image_and_wrong_size_error_names_first_offender(rgb_folder):
    save_png(rgb_folder / "sub" / "img1.png", rgb_pixels(0, size=(10, 8)))
    save_png(rgb_folder / "zz.png", rgb_pixels(0, size=(6, 6)))
    expected = (
        f"Image {rgb_folder / 'sub' / 'img1.png'} is 10x8, but the dataset resolution is 8x8 "
        "(set by the first image, img0.png, as data.resolution is not given). All images must be square "
        "and of that size. Fix: set data.resize=lanczos|bilinear|center_crop to resize on the fly, or "
        "preprocess the images to 8x8. (2 of 7 images have a wrong size.)"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        ImageFolderDataset(rgb_folder)


def test_explicit_resolution_mismatch_message(rgb_folder):
    expected = (
        f"Image {rgb_folder / 'img0.png'} is 8x8, but the dataset resolution is 16x16 "
        "(data.resolution=16). All images must be square and of that size. Fix: set "
        "data.resize=lanczos|bilinear|center_crop to resize on the fly, or preprocess the images to "
        "16x16. (6 of 6 images have a wrong size.)"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        ImageFolderDataset(rgb_folder, resolution=16)
    assert ImageFolderDataset(rgb_folder, resolution=8).resolution == 8


@pytest.mark.parametrize("resize", ["lanczos", "bilinear"])
def test_resize_matches_pil(rgb_folder, resize):
    ds = ImageFolderDataset(rgb_folder, resolution=5, resize=resize)
    method = Image.Resampling.LANCZOS if resize == "lanczos" else Image.Resampling.BILINEAR
    expected = np.asarray(Image.fromarray(rgb_pixels(10)).resize((5, 5), method))
    assert ds.resolution == 5
    np.testing.assert_array_equal(ds[0][0].permute(1, 2, 0).numpy(), expected)


def test_center_crop_crops_the_central_square_then_resizes(tmp_path):
    wide = rgb_pixels(7, size=(12, 8))
    save_png(tmp_path / "d" / "wide.png", wide)
    ds = ImageFolderDataset(tmp_path / "d", resolution=8, resize="center_crop")
    np.testing.assert_array_equal(ds[0][0].permute(1, 2, 0).numpy(), wide[:, 2:10])
    ds4 = ImageFolderDataset(tmp_path / "d", resolution=4, resize="center_crop")
    expected = np.asarray(Image.fromarray(wide[:, 2:10]).resize((4, 4), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(ds4[0][0].permute(1, 2, 0).numpy(), expected)


def test_resize_option_errors(tmp_path, rgb_folder):
    save_png(tmp_path / "d" / "wide.png", rgb_pixels(7, size=(12, 8)))
    with pytest.raises(ValueError, match=re.escape("is 12x8, not square (1 of 1 images are not square)")):
        ImageFolderDataset(tmp_path / "d", resolution=8, resize="lanczos")
    with pytest.raises(ValueError, match=re.escape("data.resize=lanczos needs a target size")):
        ImageFolderDataset(rgb_folder, resize="lanczos")
    with pytest.raises(ValueError, match=re.escape("Unknown resize mode 'nearest'; choose one of")):
        ImageFolderDataset(rgb_folder, resolution=8, resize="nearest")


def test_empty_folder_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    expected = (
        f"No images found in folder '{tmp_path / 'empty'}' (searched recursively for files ending in "
        ".png, .jpg, .jpeg, .webp, case-insensitive; hidden files are skipped)."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        ImageFolderDataset(tmp_path / "empty")


def test_nonexistent_and_non_zip_path_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=re.escape(f"Dataset path '{missing}' does not exist.")):
        ImageFolderDataset(missing)
    text = tmp_path / "file.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=re.escape(f"'{text}' is a file but not a zip archive")):
        ImageFolderDataset(text)


def test_corrupt_header_fails_at_construction(rgb_folder):
    bad = rgb_folder / "sub" / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(CorruptImageError, match=re.escape(f"Cannot read image {bad}: ")):
        ImageFolderDataset(rgb_folder)


def test_truncated_image_fails_when_read_naming_the_file(tmp_path):
    path = tmp_path / "d" / "big.png"
    save_png(path, rgb_pixels(1, size=(64, 64)))
    path.write_bytes(path.read_bytes()[:200])
    ds = ImageFolderDataset(tmp_path / "d")  # the header is intact
    with pytest.raises(CorruptImageError, match=re.escape(f"Cannot read image {path}: ")):
        ds[0]


def _write_labels(root, labels) -> None:
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))


def test_labels_from_dataset_json_in_folder_and_zip(rgb_folder, tmp_path):
    names = ["img0.png", "img1.png", "img2.png", "sub/img0.png", "sub/img1.png", "sub/img2.png"]
    _write_labels(rgb_folder, [[n, 4 - i % 3] for i, n in reversed(list(enumerate(names)))])
    for path in (rgb_folder, zip_tree(rgb_folder, tmp_path / "l.zip")):
        ds = ImageFolderDataset(path, use_labels=True, xflip=True)
        assert ds.num_classes == 5
        assert [int(ds[i][1]) for i in range(12)] == [4, 3, 2, 4, 3, 2] * 2
    _write_labels(rgb_folder, [[n, 9 if n.startswith("sub/") else i] for i, n in enumerate(names)])
    subset = ImageFolderDataset(rgb_folder, use_labels=True, max_size=2)
    assert subset.num_classes == 10  # from the whole label file, not only the images kept
    assert [int(subset[i][1]) for i in range(2)] == [0, 1]
    unlabeled = ImageFolderDataset(rgb_folder)
    assert unlabeled.num_classes == 0 and int(unlabeled[0][1]) == -1


def test_label_errors(rgb_folder):
    with pytest.raises(ValueError, match=re.escape("use_labels=True but there is no dataset.json")):
        ImageFolderDataset(rgb_folder, use_labels=True)
    _write_labels(rgb_folder, [["img0.png", 1]])
    expected = f"{rgb_folder / 'dataset.json'} has no label for img1.png (5 of 6 images unlabeled)."
    with pytest.raises(ValueError, match=re.escape(expected)):
        ImageFolderDataset(rgb_folder, use_labels=True)
    _write_labels(rgb_folder, [["img0.png", [0.5, 0.5]]])
    with pytest.raises(ValueError, match="only non-negative integer class labels are supported"):
        ImageFolderDataset(rgb_folder, use_labels=True)
    (rgb_folder / "dataset.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a valid label file"):
        ImageFolderDataset(rgb_folder, use_labels=True)


def test_xflip_and_max_size(rgb_folder):
    ds = ImageFolderDataset(rgb_folder, xflip=True, max_size=4)
    assert ds.image_names == ["img0.png", "img1.png", "img2.png", "sub/img0.png"]
    assert len(ds) == 8
    for i in range(4):
        assert torch.equal(ds[i + 4][0], ds[i][0].flip(-1))
    with pytest.raises(IndexError):
        ds[8]


def test_folder_fingerprint_tracks_content_and_options(rgb_folder):
    before = ImageFolderDataset(rgb_folder).fingerprint()
    assert before == ImageFolderDataset(rgb_folder).fingerprint()
    assert before != ImageFolderDataset(rgb_folder, xflip=True).fingerprint()
    assert before != ImageFolderDataset(rgb_folder, resolution=4, resize="lanczos").fingerprint()
    assert before != ImageFolderDataset(rgb_folder, max_size=5).fingerprint()
    target = rgb_folder / "sub" / "img2.png"
    stat = target.stat()
    save_png(target, rgb_pixels(99))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert ImageFolderDataset(rgb_folder).fingerprint() != before


def test_zip_fingerprint_is_content_based_and_location_free(rgb_folder, tmp_path):
    first = zip_tree(rgb_folder, tmp_path / "a.zip")
    moved = tmp_path / "elsewhere" / "b.zip"
    moved.parent.mkdir()
    shutil.copy(first, moved)
    fingerprint = ImageFolderDataset(first).fingerprint()
    assert ImageFolderDataset(moved).fingerprint() == fingerprint
    assert fingerprint != ImageFolderDataset(rgb_folder).fingerprint()
    save_png(rgb_folder / "img1.png", rgb_pixels(77))
    changed = zip_tree(rgb_folder, tmp_path / "c.zip")
    assert ImageFolderDataset(changed).fingerprint() != fingerprint
