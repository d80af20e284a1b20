"""A tiny studio training checkpoint for the CLI tests (studio-generate, studio-eval ckpt=)."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from studio.training.checkpoint import CHECKPOINT_FORMAT, save_atomic

TINY_G = {
    "_target_": "models.stylegan2.Generator",
    "z_dim": 8,
    "c_dim": 0,
    "w_dim": 8,
    "img_resolution": 16,
    "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {"channel_base": 128, "channel_max": 8},
}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """tmp_path/tiny.ckpt holding a seeded random 16x16 G_ema and its config, as training writes them."""
    torch.manual_seed(0)
    G = instantiate(OmegaConf.create(TINY_G))
    path = tmp_path / "tiny.ckpt"
    save_atomic({"format": CHECKPOINT_FORMAT, "generator": TINY_G, "G_ema": G.state_dict()}, path)
    return path
