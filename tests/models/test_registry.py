"""Creating networks by name."""

import pytest

from models import create_discriminator, create_generator
from models.stylegan2 import Discriminator, Generator


def test_create_by_name_passes_kwargs() -> None:
    G = create_generator("stylegan2", z_dim=8, w_dim=8, img_resolution=8, synthesis_kwargs={"channel_max": 4})
    D = create_discriminator("stylegan2", img_resolution=8, channel_max=4)
    assert isinstance(G, Generator) and G.img_resolution == 8 and G.z_dim == 8
    assert isinstance(D, Discriminator) and D.img_resolution == 8


def test_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown generator 'stylegan9'; registered: \['stylegan2'"):
        create_generator("stylegan9")
