"""Tiny-run helpers: compose the real config tree with overrides that train in seconds on CPU."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from tiny_run import TINY_RUN

from studio.cli.train import CONFIG_DIR

# tests/tiny_run.py's 16x16 StyleGAN2, with regularizers firing every 2-3 steps so that a short run
# exercises every phase, and no logger or progress output.
TINY = [
    *TINY_RUN,
    "loss.r1_interval=3",
    "loss.pl_interval=2",
    "logger=none",
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
