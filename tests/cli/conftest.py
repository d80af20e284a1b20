"""A tiny studio training checkpoint for the CLI tests (studio-generate, studio-eval ckpt=)."""

from pathlib import Path

import pytest
import torch

from studio.io.checkpoint import CHECKPOINT_FORMAT, build_network, save_checkpoint

TINY_G = {
    "name": "stylegan2-generator",
    "version": 1,
    "kwargs": {
        "z_dim": 8,
        "c_dim": 0,
        "w_dim": 8,
        "img_resolution": 16,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 128, "channel_max": 8},
    },
}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """tmp_path/tiny.ckpt holding a seeded random 16x16 G_ema and its spec, as training writes them."""
    torch.manual_seed(0)
    G = build_network(TINY_G)
    path = tmp_path / "tiny.ckpt"
    state = {"format": CHECKPOINT_FORMAT, "networks": {"generator": TINY_G}, "G_ema": G.state_dict()}
    save_checkpoint(state, path)
    return path
