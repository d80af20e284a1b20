"""Tiny StyleGAN2 networks for fast CPU tests (factories exposed as fixtures)."""

from collections.abc import Callable

import pytest
import torch

from models.stylegan2 import Discriminator, Generator

TINY = {"channel_base": 64, "channel_max": 8}


def _tiny_generator(img_resolution: int = 16, c_dim: int = 0, **synthesis_kwargs) -> Generator:
    return Generator(
        z_dim=16,
        c_dim=c_dim,
        w_dim=16,
        img_resolution=img_resolution,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs={**TINY, **synthesis_kwargs},
    )


def _tiny_discriminator(img_resolution: int = 16, c_dim: int = 0, **kwargs) -> Discriminator:
    return Discriminator(
        c_dim=c_dim, img_resolution=img_resolution, mapping_kwargs={"num_layers": 2}, **{**TINY, **kwargs}
    )


@pytest.fixture
def tiny_generator() -> Callable[..., Generator]:
    """G(img_resolution=16, c_dim=0, **synthesis_kwargs): z_dim = w_dim = 16, 8 channels, mapping depth 2."""
    return _tiny_generator


@pytest.fixture
def tiny_discriminator() -> Callable[..., Discriminator]:
    """D(img_resolution=16, c_dim=0, **kwargs) with 8 channels, label mapping depth 2."""
    return _tiny_discriminator


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
