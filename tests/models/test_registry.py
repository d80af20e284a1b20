"""Networks by stable, versioned name (what checkpoints store instead of import paths)."""

import pytest
from torch import nn

from models import create_network, network_name, register_network
from models.registry import NETWORKS
from models.stylegan2 import Discriminator, Generator


def test_create_by_name_passes_kwargs() -> None:
    G = create_network(
        "stylegan2-generator", 1, z_dim=8, w_dim=8, img_resolution=8, synthesis_kwargs={"channel_max": 4}
    )
    D = create_network("stylegan2-discriminator", img_resolution=8, channel_max=4)
    assert isinstance(G, Generator) and G.img_resolution == 8 and G.z_dim == 8
    assert isinstance(D, Discriminator) and D.img_resolution == 8
    assert network_name(G) == ("stylegan2-generator", 1)
    assert network_name(Discriminator) == ("stylegan2-discriminator", 1)


def test_unknown_name_and_version_errors() -> None:
    with pytest.raises(KeyError, match=r"unknown network 'stylegan9'; registered: \[.*'stylegan2-generator'"):
        create_network("stylegan9")
    with pytest.raises(KeyError, match=r"version 7 is not known to this studio \(it knows \[1\]\)"):
        create_network("stylegan2-generator", 7)
    with pytest.raises(KeyError, match="Linear is not a registered network"):
        network_name(nn.Linear(1, 1))


def test_a_new_version_keeps_the_old_one_and_is_the_default(monkeypatch) -> None:
    monkeypatch.setattr("models.registry.NETWORKS", dict(NETWORKS))

    @register_network("toy", version=1)
    class ToyV1(nn.Linear):
        pass

    @register_network("toy", version=2)
    class ToyV2(nn.Linear):
        pass

    assert type(create_network("toy", in_features=1, out_features=1)) is ToyV2
    assert type(create_network("toy", 1, in_features=1, out_features=1)) is ToyV1
    with pytest.raises(ValueError, match="'toy' version 1 is already registered"):
        register_network("toy", 1)(nn.Linear)
