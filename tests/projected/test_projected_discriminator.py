"""Projected GAN discriminator: logit shapes, the fixed random projections (CCM, CSM), frozen parts
through the training loop's toggling, gradients to the image, conditioning, registry round trip."""

import math

import pytest
import torch
from torch import nn

from models.projected import ProjectedDiscriminator
from models.projected.heads import Head
from models.projected.projection import RandomProjection
from models.registry import create_network, network_name

LITE0_CHANNELS = [24, 40, 112, 320]


@pytest.fixture(autouse=True)
def _modest_cpu() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))


def small_d(**kwargs) -> ProjectedDiscriminator:
    return ProjectedDiscriminator(img_resolution=16, backbone_resolution=64, **kwargs)


def test_logits_concatenate_the_four_heads() -> None:
    # Backbone at 64x64: maps 16, 8, 4, 2; heads halve to <= 8 then a 4x4 (or map-sized) logit conv:
    # 16 -> 8 -> 5x5, 8 -> 5x5, 4 -> 1x1, 2 -> 1x1.
    D = small_d()
    logits = D(torch.randn(3, 3, 16, 16))
    assert logits.shape == (3, 25 + 25 + 1 + 1)
    assert [len(head.blocks) for head in D.heads] == [1, 0, 0, 0]


def test_default_backbone_resolution_is_224_below_224_and_native_above() -> None:
    assert ProjectedDiscriminator(img_resolution=32).feature_network.resolution == 224
    assert ProjectedDiscriminator(img_resolution=256).feature_network.resolution == 256


@pytest.mark.parametrize(
    ("mode", "channels"),
    [("none", LITE0_CHANNELS), ("ccm", [64, 128, 256, 512]), ("ccm_csm", [64, 128, 256, 512])],
)
def test_projection_modes(mode: str, channels: list[int]) -> None:
    projection = RandomProjection(LITE0_CHANNELS, mode)
    features = [torch.randn(2, c, s, s) for c, s in zip(LITE0_CHANNELS, (16, 8, 4, 2), strict=True)]
    out = projection(features)
    assert [x.shape[1] for x in out] == channels == projection.out_channels
    assert [x.shape[-1] for x in out] == [16, 8, 4, 2]
    if mode == "none":
        assert all(a is b for a, b in zip(out, features, strict=True))


def test_csm_fuses_deeper_stages_into_shallower_ones_and_ccm_does_not() -> None:
    features = [torch.randn(1, c, s, s) for c, s in zip(LITE0_CHANNELS, (16, 8, 4, 2), strict=True)]
    changed = [f.clone() for f in features]
    changed[3] += 1  # only the deepest stage
    for mode, shallow_changes in (("ccm", False), ("ccm_csm", True)):
        projection = RandomProjection(LITE0_CHANNELS, mode)
        a, b = projection(features), projection(changed)
        assert not torch.equal(a[3], b[3])
        assert (not torch.equal(a[0], b[0])) == shallow_changes


def test_projection_is_a_seeded_fixed_draw() -> None:
    a, b, c = (RandomProjection(LITE0_CHANNELS, seed=s) for s in (0, 0, 1))
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert not torch.equal(a.ccm[0].weight, c.ccm[0].weight)
    with pytest.raises(ValueError, match=r"^projection must be one of none, ccm, ccm_csm, got 'csm'$"):
        RandomProjection(LITE0_CHANNELS, "csm")


def test_frozen_parts_survive_the_training_loops_toggling_and_gradients_reach_the_image() -> None:
    D = small_d()
    D.train()
    D.requires_grad_(True)
    frozen = {id(t) for part in (D.feature_network, D.projection) for t in part.buffers()}
    assert not frozen & {id(p) for p in D.parameters()}
    assert list(D.feature_network.parameters()) == list(D.projection.parameters()) == []
    assert not D.feature_network.training and not D.projection.training and D.heads.training
    stats = D.feature_network.backbone._bn0.running_mean.clone()
    img = torch.randn(2, 3, 16, 16, requires_grad=True)
    D(img).sum().backward()
    assert torch.equal(D.feature_network.backbone._bn0.running_mean, stats)
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert all(p.grad is not None for p in D.parameters())


def test_conditional_heads_project_onto_the_label_embedding() -> None:
    D = small_d(c_dim=3)
    img = torch.randn(2, 3, 16, 16)
    one_hot = torch.eye(3)[[0, 2]]
    logits = D(img, one_hot)
    assert logits.shape == (2, 52)
    assert not torch.allclose(logits, D(img, torch.eye(3)[[1, 1]]))
    with pytest.raises(ValueError, match=r"^c must be \[N, 3\] \(one-hot labels\), got None$"):
        D(img)
    head = Head(8, 4, c_dim=2, cmap_dim=4).eval()
    x, c = torch.randn(1, 8, 4, 4), torch.tensor([[1.0, 0.0]])
    out, cmap = head.logits(x), head.embed(c)
    expected = (out * cmap[:, :, None, None]).sum(1).flatten(1) / math.sqrt(4)
    torch.testing.assert_close(head(x, c), expected)


def test_separable_heads_use_depthwise_convolutions() -> None:
    D = small_d(separable_heads=True)
    depthwise = [m for m in D.heads.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels for m in depthwise)
    assert D(torch.randn(2, 3, 16, 16)).shape == (2, 52)


def test_input_checks() -> None:
    D = small_d()
    with pytest.raises(ValueError, match=r"^img must be \[N, 3, 16, 16\], got \[2, 3, 8, 8\]$"):
        D(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="img_channels must be 3, got 1"):
        ProjectedDiscriminator(img_resolution=16, img_channels=1)


def test_registry_round_trip_rebuilds_the_same_network() -> None:
    D = small_d(projection="ccm")
    assert network_name(D) == ("projected-discriminator", 1)
    kwargs = {"img_resolution": 16, "backbone_resolution": 64, "projection": "ccm"}
    rebuilt = create_network("projected-discriminator", **kwargs)
    rebuilt.load_state_dict(D.state_dict())
    D.eval(), rebuilt.eval()
    img = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(rebuilt(img), D(img))
