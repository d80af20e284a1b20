"""Perceptual path length and the LPIPS-VGG distance: agreement with the `lpips` package on identical
weights, PPL plumbing on a tiny seeded generator, weights resolution and argument errors."""

import copy
import importlib.metadata
import importlib.util
import re
import shutil
import warnings

import numpy as np
import pytest
import torch
from tiny_run import tiny_generator

import studio.metrics.functional as F
from models.stylegan2 import Generator
from studio.features import WeightsNotFoundError, resolve_weights
from studio.features.lpips import LPIPS_VGG_LIN_WEIGHTS, lpips_vgg, resolve_lin_weights
from studio.metrics.functional.ppl import prepare_images, slerp


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tensors here are tiny: a second OpenMP thread gains nothing and, on a busy 2-core machine,
    spin contention made this file 3x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference():
    """lpips' own LPIPS-VGG: random torchvision VGG16 trunk (pnet_rand: nothing downloaded), shipped v0.1 lin
    weights."""
    lpips = pytest.importorskip("lpips")
    torch.manual_seed(1)
    with warnings.catch_warnings():  # lpips calls torchvision's deprecated vgg16(pretrained=False)
        warnings.simplefilter("ignore", UserWarning)
        return lpips.LPIPS(net="vgg", version="0.1", pretrained=True, pnet_rand=True, verbose=False).eval()


def _reference_trunk(reference) -> dict[str, torch.Tensor]:
    """The reference trunk as torchvision vgg16 keys: its slices keep the `features` indices."""
    return {
        f"features.{key}": value
        for i in range(1, 6)
        for key, value in getattr(reference.net, f"slice{i}").state_dict().items()
    }


def _images(n: int = 4, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(n, 3, size, size, generator=gen) * 2 - 1 for _ in range(2))


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_lpips_equals_the_lpips_package_on_identical_weights(reference, tmp_path, empty_cache):
    vgg_file = tmp_path / "vgg16-397923af.pth"
    torch.save(_reference_trunk(reference), vgg_file)
    ours = lpips_vgg(vgg_weights=str(vgg_file))  # lin weights: resolved from the installed lpips
    assert not any(p.requires_grad for p in ours.parameters()) and not ours.training
    x, y = _images()
    with torch.no_grad():
        expected = reference(x, y).view(-1)
        got = ours(x, y)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)  # measured: bit-identical


def test_lpips_equals_the_lpips_package_in_float64(reference):
    ours = lpips_vgg(seed=3)
    ours.load_vgg16(_reference_trunk(reference))
    ours.load_lins(torch.load(resolve_lin_weights(), map_location="cpu", weights_only=True))
    reference_64, ours = copy.deepcopy(reference).double(), ours.double()
    x, y = (t.double() for t in _images(size=32, seed=1))
    with torch.no_grad():
        torch.testing.assert_close(ours(x, y), reference_64(x, y).view(-1), rtol=1e-12, atol=1e-14)


def test_the_v0_1_lin_file_is_used_not_v0_0(empty_cache):
    pytest.importorskip("lpips")
    path = resolve_lin_weights()
    assert path.parts[-3:] == ("weights", "v0.1", "vgg.pth")
    (empty_cache / "weights").mkdir(parents=True)
    shutil.copy(path, empty_cache / "weights" / "lpips_vgg_v0.1.pth")
    assert resolve_lin_weights() == empty_cache / "weights" / "lpips_vgg_v0.1.pth"


def test_seeded_lpips_is_deterministic_and_nonnegative():
    a, b = lpips_vgg(seed=0), lpips_vgg(seed=0)
    x, y = _images(n=2, size=16)
    with torch.no_grad():
        from_a = a(torch.cat([x, x]), torch.cat([y, x]))
        torch.testing.assert_close(from_a[:2], b(x, y), rtol=0, atol=0)
    assert (from_a[:2] > 0).all() and (from_a[2:] == 0).all()
    assert all((lin.weight >= 0).all() for lin in a.lins)


def test_missing_lin_weights_name_the_file(empty_cache, monkeypatch):
    real_distribution = importlib.metadata.distribution

    def no_lpips(name):
        if name == "lpips":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_distribution(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_lpips)
    with pytest.raises(WeightsNotFoundError) as caught:
        lpips_vgg()
    message = str(caught.value)
    with pytest.raises(WeightsNotFoundError) as direct:
        resolve_weights("lpips-vgg", LPIPS_VGG_LIN_WEIGHTS)
    assert message == str(direct.value)
    assert f"Put the file lpips_vgg_v0.1.pth at {empty_cache / 'weights' / 'lpips_vgg_v0.1.pth'}" in message
    assert "`pip install lpips`" in message


def test_missing_explicit_files_are_named(tmp_path):
    missing = tmp_path / "nope.pth"
    expected = f"weights file {missing} (given for backbone 'vgg16') does not exist"
    if importlib.util.find_spec("lpips") is not None:
        with pytest.raises(WeightsNotFoundError, match=re.escape(expected)):
            lpips_vgg(vgg_weights=str(missing))
    expected = f"weights file {missing} (given for backbone 'lpips-vgg') does not exist"
    with pytest.raises(WeightsNotFoundError, match=re.escape(expected)):
        lpips_vgg(lin_weights=str(missing))


@pytest.fixture(scope="module")
def G64():
    return tiny_generator().double()


@pytest.fixture(scope="module")
def D64():
    return lpips_vgg(seed=0).double()


def test_ppl_does_not_depend_on_the_batch_size(G64, D64):
    small = F.perceptual_path_length(G64, D64, num_samples=8, batch=3, return_distances=True)
    large = F.perceptual_path_length(G64, D64, num_samples=8, batch=8, return_distances=True)
    np.testing.assert_allclose(small["distances"], large["distances"], rtol=1e-9)
    assert small["ppl"] == pytest.approx(large["ppl"], rel=1e-9)
    assert np.all(small["distances"] > 0)


def test_ppl_in_float32_batch_differences_are_roundoff():
    G, D = tiny_generator(), lpips_vgg(seed=0)
    small = F.perceptual_path_length(G, D, num_samples=4, batch=2)
    large = F.perceptual_path_length(G, D, num_samples=4, batch=4)
    assert small["ppl"] == pytest.approx(large["ppl"], rel=1e-2)


def test_percentile_filter_matches_numpy(G64, D64):
    out = F.perceptual_path_length(G64, D64, num_samples=20, batch=20, sampling="full", return_distances=True)
    d = out["distances"]
    assert d.shape == (20,) and d.dtype == np.float64
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    kept = d[(d >= lo) & (d <= hi)]
    assert out["ppl"] == pytest.approx(kept.mean(), rel=1e-12)
    assert out["ppl_num_samples"] == kept.size == 20  # with 20 samples both bounds are the extremes
    linear = F.perceptual_path_length(
        G64, D64, num_samples=20, batch=20, sampling="full", percentile_methods=("linear", "linear")
    )
    assert linear["ppl_num_samples"] == 18  # interpolated bounds drop the min and the max


def test_spaces_samplings_and_conditioning(D64):
    G = tiny_generator(c_dim=3).double()
    results = {
        (space, sampling): F.perceptual_path_length(
            G, D64, num_samples=4, batch=4, space=space, sampling=sampling, return_distances=True
        )["distances"]
        for space in ("w", "z")
        for sampling in ("end", "full")
    }
    assert all(np.all(np.isfinite(d) & (d > 0)) for d in results.values())
    assert not np.allclose(results["w", "end"], results["w", "full"])
    assert not np.allclose(results["w", "full"], results["z", "full"])


def test_epsilon_scaling(G64):
    def constant(a, b):
        return torch.ones(a.shape[0], dtype=torch.float64)

    for eps in (1e-2, 1e-4):
        assert F.perceptual_path_length(G64, constant, num_samples=3, epsilon=eps)["ppl"] == pytest.approx(
            1 / eps**2, rel=1e-12
        )

    def squared(a, b):
        return (a - b).square().mean(dim=(1, 2, 3))

    # A quadratic distance divided by eps^2 converges as eps -> 0 (the metric's design).
    fine = F.perceptual_path_length(G64, squared, num_samples=4, epsilon=1e-6, sampling="full")["ppl"]
    coarse = F.perceptual_path_length(G64, squared, num_samples=4, epsilon=1e-4, sampling="full")["ppl"]
    assert coarse == pytest.approx(fine, rel=1e-2)

    def linear(a, b):
        return (a - b).abs().mean(dim=(1, 2, 3))

    fine = F.perceptual_path_length(G64, linear, num_samples=4, epsilon=1e-6, sampling="full")["ppl"]
    coarse = F.perceptual_path_length(G64, linear, num_samples=4, epsilon=1e-4, sampling="full")["ppl"]
    assert fine * 1e-6 == pytest.approx(coarse * 1e-4, rel=1e-2)


def test_slerp_stays_on_the_sphere_between_the_endpoints():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    unit = torch.nn.functional.normalize
    torch.testing.assert_close(slerp(a, b, torch.zeros(5)), unit(a, dim=1))
    torch.testing.assert_close(slerp(a, b, torch.ones(5)), unit(b, dim=1))
    torch.testing.assert_close(slerp(a, b, torch.rand(5, generator=gen)).norm(dim=1), torch.ones(5))


def test_prepare_images_crop_and_downsampling():
    images = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    torch.testing.assert_close(prepare_images(images, crop=True), images[:, :, 12:28, 8:24])
    large = torch.randn(1, 3, 512, 512)
    torch.testing.assert_close(prepare_images(large, crop=False), torch.nn.functional.avg_pool2d(large, 2))
    assert prepare_images(torch.zeros(1, 1, 16, 16), crop=False).shape == (1, 3, 16, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"space": "x"}, "space must be 'w' or 'z', got 'x'"),
        ({"sampling": "mid"}, "sampling must be 'full' or 'end', got 'mid'"),
        ({"num_samples": 0}, "num_samples must be >= 1, got 0"),
        ({"epsilon": 0.0}, "epsilon must be > 0, got 0.0"),
        ({"batch": 0}, "batch must be >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as caught:
        F.perceptual_path_length(tiny_generator(), lambda a, b: a.new_zeros(a.shape[0]), **kwargs)
    assert str(caught.value) == message


def test_non_finite_distances_are_reported(G64):
    with pytest.raises(ValueError, match=re.escape("2 of 2 path distances are NaN or Inf")):
        F.perceptual_path_length(G64, lambda a, b: a.new_full((a.shape[0],), float("nan")), num_samples=2)


def test_fp16_layers_are_measured_in_float32() -> None:
    """NVlabs' PPL forces fp32 synthesis: fp16 round-off (CUDA only) would swamp the eps-step differences.
    The flags are off during the metric's syntheses and restored after."""
    torch.manual_seed(0)
    synthesis = {"channel_base": 128, "channel_max": 8, "num_fp16_res": 2, "conv_clamp": 256}
    G = Generator(z_dim=8, w_dim=8, img_resolution=16, synthesis_kwargs=synthesis).eval()
    blocks = [block for block in G.synthesis.modules() if getattr(block, "use_fp16", False)]
    assert blocks
    seen = []
    G.synthesis.register_forward_hook(lambda *_: seen.append({block.use_fp16 for block in blocks}))
    F.perceptual_path_length(G, lambda a, b: (a - b).square().mean(dim=(1, 2, 3)), num_samples=2)
    assert seen and all(flags == {False} for flags in seen)
    assert all(block.use_fp16 for block in blocks)
