"""Tiny-run helpers: compose the real config tree with overrides that train in seconds on CPU."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from studio.cli.train import CONFIG_DIR

# A 16x16 StyleGAN2 with a few thousand parameters; regularizers fire every 2-3 steps so a short run
# exercises every phase. One step = 4 images. ~experiment: the plain config tree, without the
# first-run demo's settings (no path-length term, FID at ticks), which tests/training/test_config.py checks.
TINY = [
    "~experiment",
    "data.resolution=16",
    "data.num_workers=0",
    "model.z_dim=8",
    "model.w_dim=8",
    "model.channel_base=128",
    "model.channel_max=8",
    "model.mbstd_group_size=2",
    "train.batch=4",
    "loss.r1_interval=3",
    "loss.pl_interval=2",
    "eval.grid=2",
    "logger=none",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_train(run_dir: Path, *overrides: str) -> DictConfig:
    # 64 procedural shapes, unless the test chooses another dataset (data=folder has no data.dataset.size).
    shapes = [] if any(o.startswith("data=") for o in overrides) else ["data.dataset.size=64"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=[*TINY, *shapes, f"run_dir={run_dir}", *overrides])


@pytest.fixture
def tiny_cfg():
    """compose_train(run_dir, *overrides) -> the real training config, shrunk by TINY."""
    return compose_train


@pytest.fixture
def tiny_overrides() -> list[str]:
    """The TINY overrides on the shapes dataset, for running studio-train as a subprocess."""
    return [*TINY, "data.dataset.size=64"]
