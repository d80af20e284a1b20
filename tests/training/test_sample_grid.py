"""Sample grids draw their images through studio.sampling: the images studio-generate writes."""

from types import SimpleNamespace

import torch

from models import create_network
from studio.callbacks.samples import SampleGrid
from studio.features.resize import quantize_to_uint8
from studio.sampling import sample_images


def test_grid_images_are_the_seeded_samples_of_studio_generate() -> None:
    torch.manual_seed(0)
    G = create_network(
        "stylegan2-generator",
        z_dim=8,
        w_dim=8,
        c_dim=3,
        img_resolution=8,
        synthesis_kwargs={"channel_max": 4},
    ).eval()
    grid = SampleGrid("unused", every_kimg=1, grid=3, seed=5, batch=4).fakes(SimpleNamespace(G_ema=G))
    expected = torch.cat([quantize_to_uint8(images) for images in sample_images(G, 9, seed=5, batch=2)])
    assert grid.dtype == torch.uint8 and grid.shape == (9, 3, 8, 8)
    assert torch.equal(grid, expected)
