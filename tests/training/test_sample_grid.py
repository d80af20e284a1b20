"""Sample grids draw their images through studio.sampling: the images studio-generate writes."""

from types import SimpleNamespace

import torch

from models import create_network
from ops.environment import _precision_flags, fp32_precision
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


def test_the_generator_runs_in_ieee_float32_whatever_the_callers_tf32_setting(monkeypatch) -> None:
    """On CUDA, cuDNN convolutions default to TF32: studio-generate and the sample views would then draw
    other pixels than the evaluation (which runs in IEEE float32). The flags are checked on the CPU."""
    G = create_network(
        "stylegan2-generator", z_dim=8, w_dim=8, img_resolution=8, synthesis_kwargs={"channel_max": 4}
    )
    seen = []
    forward = G.forward

    def recording(*args, **kwargs):
        seen.append([getattr(owner, name) for owner, name, _ in _precision_flags(False)])
        return forward(*args, **kwargs)

    monkeypatch.setattr(G, "forward", recording)
    with fp32_precision(allow_tf32=True):
        for _ in sample_images(G, 3, batch=2):
            pass
        after = [getattr(owner, name) for owner, name, _ in _precision_flags(False)]
    assert seen == [[value for _, _, value in _precision_flags(False)]] * 2
    assert after == [value for _, _, value in _precision_flags(True)]  # the caller's setting is back
