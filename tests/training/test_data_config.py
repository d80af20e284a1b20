"""Training on an image folder: class-conditional runs, and resolutions StyleGAN2 cannot build."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.io.checkpoint import load_checkpoint
from studio.training.run import resolve_data, train


def write_images(folder: Path, size: int, labels: list[int] | None = None) -> Path:
    """len(labels) (or 6) random RGB PNGs size x size, with dataset.json when labels are given."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"img{i}.png" for i in range(len(labels) if labels else 6)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name)
    if labels:
        (folder / "dataset.json").write_text(
            json.dumps({"labels": [list(e) for e in zip(names, labels, strict=True)]})
        )
    return folder


def test_class_conditional_training_on_a_labeled_folder(tmp_path, tiny_cfg) -> None:
    images = write_images(tmp_path / "images", 16, labels=[0, 1, 2, 0, 1, 2, 0, 1])
    run_dir = tmp_path / "run"
    data = ("data=folder", f"data.path={images}", "data.use_labels=true", "data.num_workers=0")
    module = train(tiny_cfg(run_dir, *data, "train.kimg=0.008"))
    assert module.num_steps == 2

    state = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert state["networks"]["generator"]["kwargs"]["c_dim"] == 3
    assert "c_dim: 3" in state["config"]
    # G embeds the one-hot label into w_dim features, D into its cmap_dim (4x4 channels, here 8).
    assert state["G"]["mapping.embed.weight"].shape == (8, 3)
    assert state["D"]["mapping.embed.weight"].shape == (8, 3)
    assert state["G_ema"]["mapping.embed.weight"].shape == (8, 3)
    assert state["D"]["epilogue.out.weight"].shape == (8, 8)  # D's features projected on the label embedding
    assert module.G.c_dim == module.D.c_dim == 3


@pytest.mark.parametrize(
    ("resolution", "resize"),
    [
        ("data.resolution=null", "lanczos"),  # taken from the 12x12 images
        ("data.resolution=12", "bilinear"),  # resized to 12x12 on the fly: keep the user's resize mode
    ],
)
def test_a_resolution_that_is_not_a_power_of_two_is_refused(tmp_path, tiny_cfg, resolution, resize) -> None:
    images = write_images(tmp_path / "images", 12)
    overrides = ("data=folder", f"data.path={images}", resolution)
    if resolution.endswith("12"):
        overrides += (f"data.resize={resize}",)
    with pytest.raises(ValueError) as info:
        resolve_data(tiny_cfg(tmp_path, *overrides))
    assert str(info.value) == (
        "The dataset resolution is 12x12, but StyleGAN2 needs a power of two >= 4 (4, 8, 16, 32, ...). "
        f"Fix: data.resolution=16 data.resize={resize} to resize the images on the fly."
    )


def test_a_procedural_dataset_at_a_resolution_that_is_not_a_power_of_two_is_refused(
    tmp_path, tiny_cfg
) -> None:
    with pytest.raises(ValueError) as info:
        resolve_data(tiny_cfg(tmp_path, "data.resolution=24"))
    assert str(info.value) == (
        "The dataset resolution is 24x24, but StyleGAN2 needs a power of two >= 4 (4, 8, 16, 32, ...). "
        "Fix: data.resolution=32."
    )
