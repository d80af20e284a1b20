"""Parameter counts equal the published StyleGAN2 ones: the cheap proof the architecture is the same."""

import pytest
import torch

from models.stylegan2 import Discriminator, Generator


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_cpu_config_counts_exactly() -> None:
    G = Generator(
        img_resolution=32,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs={"channel_base": 4096, "channel_max": 128},
    )
    D = Discriminator(img_resolution=32, channel_base=4096, channel_max=128)
    assert num_params(G) == 2_284_307
    assert num_params(G.mapping) == 525_312
    assert num_params(D) == 1_346_305
    assert G.num_ws == 8


@pytest.mark.parametrize(
    ("resolution", "g_millions", "d_millions"),
    [(256, 30.03, 28.86), (512, 30.28, 28.98), (1024, 30.37, 29.01)],
)
def test_nvlabs_default_counts(resolution: int, g_millions: float, d_millions: float) -> None:
    G = Generator(img_resolution=resolution)
    D = Discriminator(img_resolution=resolution)
    assert round(num_params(G) / 1e4) / 100 == g_millions
    assert round(num_params(D) / 1e4) / 100 == d_millions
    assert round(num_params(G.mapping) / 1e4) / 100 == 2.10
    assert G.num_ws == 2 * resolution.bit_length() - 4


def test_conditional_counts_add_the_label_embeddings() -> None:
    G = Generator(
        c_dim=10,
        img_resolution=32,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs={"channel_base": 4096, "channel_max": 128},
    )
    D = Discriminator(
        c_dim=10, img_resolution=32, channel_base=4096, channel_max=128, mapping_kwargs={"num_layers": 2}
    )
    # G: embed 10->512 (+bias); first FC now takes 1024 inputs. D: output FC 128->cmap_dim=128 instead
    # of 128->1, label mapping embed 10->128 and two 128->128 FCs.
    assert num_params(G) == 2_284_307 + (10 * 512 + 512) + 512 * 512
    out_fc_change = (128 * 128 + 128) - (128 + 1)
    assert num_params(D) == 1_346_305 + out_fc_change + (10 * 128 + 128) + 2 * (128 * 128 + 128)
