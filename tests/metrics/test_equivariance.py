"""Equivariance metrics EQ-T, EQ-T_frac, EQ-R: the image resampling, PSNRs the math predicts on a pure
Fourier-feature "generator", StyleGAN3 against an aliasing control, option and generator checks, and the
suite wiring (studio-eval ckpt=, the training-tick evaluator)."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_run import tiny_generator as tiny_stylegan2
from torch import nn

import ops
import studio.metrics.functional as F
from models.stylegan3 import CONFIGS, Band, Generator, SynthesisInput
from studio.callbacks import GeneratorMetrics
from studio.cli.eval import main
from studio.data import ShapesDataset
from studio.io.checkpoint import CHECKPOINT_FORMAT, build_network, load_generator, save_checkpoint
from studio.metrics.compute import effective_options, metric_outputs
from studio.metrics.equivariance import Equivariance, equivariance_for
from studio.metrics.functional.equivariance import draw_samples, rotation, translation
from studio.metrics.functional.generator_precision import float32_layers
from studio.metrics.functional.resampling import transform_images

SG3_KWARGS = {
    "z_dim": 16,
    "w_dim": 16,
    "img_resolution": 32,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {"channel_base": 512, "channel_max": 16},  # few channels: fast on a CPU
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The forward passes are tiny: extra intra-op threads only add hand-offs on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def stylegan3(config: str = "t", resolution: int = 32) -> Generator:
    torch.manual_seed(0)
    kwargs = {**SG3_KWARGS, "synthesis_kwargs": {**CONFIGS[config], **SG3_KWARGS["synthesis_kwargs"]}}
    return Generator(**{**kwargs, "img_resolution": resolution}).eval()


class FourierSynthesis(nn.Module):
    """ws [N, 1, w_dim] -> StyleGAN3's Fourier features sampled on the R x R output grid (3 channels,
    frequencies up to `cutoff` cycles per image), halved, plus a fixed `pattern` [3, R, R] that does not
    move with the input (the "texture sticking" of an aliasing generator, in its purest form)."""

    def __init__(self, resolution: int, cutoff: float, w_dim: int, pattern: torch.Tensor) -> None:
        super().__init__()
        band = Band(3, resolution, resolution, cutoff, cutoff, 0.0, False)
        self.input = SynthesisInput(w_dim, band)
        with torch.no_grad():  # w rotates and shifts the features: every sample differs
            self.input.affine.weight.normal_()
        self.register_buffer("pattern", pattern)

    def forward(self, ws: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        return self.input(ws[:, 0]) / 2 + self.pattern


class FourierGenerator(nn.Module):
    """A generator whose image is its Fourier-feature input alone (+ a checkerboard of `amplitude`):
    translating the input translates the image exactly, so any error is the metric's own."""

    def __init__(self, resolution: int = 32, cutoff: float = 4.0, amplitude: float = 0.0) -> None:
        super().__init__()
        self.z_dim = self.w_dim = 8
        self.c_dim = 0
        self.img_resolution = resolution
        i = torch.arange(resolution)
        checkerboard = amplitude * (-1.0) ** (i[:, None] + i[None, :])
        torch.manual_seed(0)
        self.synthesis = FourierSynthesis(resolution, cutoff, self.w_dim, checkerboard.expand(3, -1, -1))

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return z[:, None]


def test_transform_images_shifts_whole_pixels_and_rotates_clockwise() -> None:
    images = torch.randn(2, 3, 8, 8)
    shift = torch.stack([translation(2 / 8, -1 / 8), translation(-3 / 8, 0)])
    moved, valid = transform_images(images, shift, radius=0)
    # Content moves 2 columns right and 1 row up; the pixels it leaves behind are invalid.
    torch.testing.assert_close(moved[0, :, :-1, 2:], images[0, :, 1:, :-2], atol=0, rtol=0)
    assert valid[0, 0, :-1, 2:].all() and valid[0].sum() == 7 * 6
    torch.testing.assert_close(moved[1, :, :, :-3], images[1, :, :, 3:], atol=0, rtol=0)
    assert valid[1].sum() == 8 * 5
    # A quarter turn maps pixel centres onto pixel centres: the Lanczos taps are exact there.
    turned, valid = transform_images(images[:1], rotation(90)[None], radius=2)
    clockwise = torch.rot90(images[:1], k=-1, dims=(2, 3))
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # radius - 1 = 1 pixel in
    assert valid[inner].all() and valid.sum() == 6 * 6
    torch.testing.assert_close(turned[inner], clockwise[inner], atol=1e-6, rtol=0)


def test_lanczos_resampling_of_a_band_limited_image_matches_the_moved_continuous_image() -> None:
    size, f = 32, (2.5, -1.5)  # cycles per image, well below Nyquist (16)
    coords = (torch.arange(size, dtype=torch.float64) + 0.5 - size / 2) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")

    def image(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        return torch.cos(2 * math.pi * (f[0] * xs + f[1] * ys) + 0.3)[None, None]

    for m in (translation(0.037, -0.081), rotation(31.0), rotation(-17.0) @ translation(0.02, 0.05)):
        moved, valid = transform_images(image(x, y).float(), m[None], radius=8)
        sx, sy = m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]
        expected = image(sx, sy)
        assert valid.sum() > 100
        error = (moved.double() - expected)[valid].abs().max()
        assert error < 3e-3  # Lanczos-8's pass-band ripple here is about 1e-3; a wrong sign gives ~1


def test_integer_shifts_of_a_pure_fourier_input_are_exact() -> None:
    """EQ-T of a generator that is its Fourier input alone is float32 round-off only; the fractional
    and rotated versions carry the Lanczos resampler's small error (a wrong sign would give ~0 dB)."""
    result = F.equivariance(FourierGenerator(), num_samples=16, batch=8)
    assert result["eq_t"] > 110  # measured 130 dB
    assert result["eq_t_frac"] > 65 and result["eq_r"] > 65  # measured 75, 76 dB


def test_a_pattern_that_sticks_to_the_pixels_gives_the_predicted_psnr() -> None:
    """Adding a fixed checkerboard a (-1)^(i + j) leaves, after a shift by (kx, ky) pixels, the error
    a ((-1)^(i+j) - (-1)^(i+j-kx-ky)): 0 for an even kx + ky, 4 a^2 per pixel for an odd one."""
    amplitude, seeds = 0.01, range(16)
    G = FourierGenerator(amplitude=amplitude)
    result = F.equivariance(G, ["eq_t"], num_samples=len(seeds), batch=5, return_errors=True)
    _, transforms = draw_samples(G, seeds, translate_max=0.125, rotate_max=45.0)
    pixels = (-transforms["eq_t"][:, :2, 2] * 32).round().long()
    odd = (pixels.sum(dim=1) % 2 == 1).numpy()
    assert 0 < odd.sum() < len(seeds) and (pixels.abs() <= 4).all()  # both cases occur; |k| <= 32 / 8
    predicted = np.where(odd, 4 * amplitude**2, 0.0)
    np.testing.assert_allclose(result["errors"]["eq_t"], predicted, rtol=1e-5, atol=1e-11)
    assert result["eq_t"] == pytest.approx(10 * math.log10(4 / predicted.mean()), abs=1e-5)


def with_aliasing_filters(G: Generator) -> Generator:
    """G with every anti-aliasing filter replaced, taps centred as before (so the geometry is the
    same): up-sampling by StyleGAN2's [1, 3, 3, 1] kernel and down-sampling after a mere 2-tap average."""
    for layer in G.synthesis.layers:
        for name, taps in (("up_filter", [1.0, 3.0, 3.0, 1.0]), ("down_filter", [1.0, 1.0])):
            old = getattr(layer, name)
            if old is None:
                continue
            centred = torch.zeros(old.shape[-1])
            start = old.shape[-1] // 2 - len(taps) // 2
            centred[start : start + len(taps)] = torch.tensor(taps)
            setattr(layer, name, ops.setup_filter(centred, separable=old.ndim == 1))
    return G


def test_stylegan3_t_is_far_more_translation_equivariant_than_the_same_net_with_aliasing_filters() -> None:
    """A StyleGAN2 generator cannot be measured with the same metric: its input is a learned 4x4
    constant, which has no translation finer than R/4 pixels. The control is the same untrained
    StyleGAN3-T, weights included, with StyleGAN2-grade resampling filters. At 64x64 the early layers
    run at 16 and 32 samples per image, where a one-pixel shift of the image is a sub-pixel one (at
    32x32, every even shift is a whole-pixel shift for every layer, and the border, where StyleGAN3's
    last layers have no margin, weighs more)."""
    options = {"metrics": ["eq_t", "eq_t_frac"], "num_samples": 16, "batch": 16}
    alias_free = F.equivariance(stylegan3("t", 64), **options)
    aliasing = F.equivariance(with_aliasing_filters(stylegan3("t", 64)), **options)
    # Measured 92.1 and 96.6 dB against 63.9 and 63.6 dB (2026-12-01, after matching NVlabs' full convs).
    assert alias_free["eq_t"] > aliasing["eq_t"] + 15
    assert alias_free["eq_t_frac"] > aliasing["eq_t_frac"] + 15


def test_config_r_is_far_more_rotation_equivariant_than_config_t() -> None:
    options = {"metrics": ["eq_r"], "num_samples": 8, "batch": 8}
    assert (
        F.equivariance(stylegan3("r"), **options)["eq_r"]
        > F.equivariance(stylegan3("t"), **options)["eq_r"] + 20
    )  # measured 79.9 dB against 44.1 dB


def test_values_do_not_depend_on_the_batch_and_the_input_transform_is_restored() -> None:
    # In float64: this generator's squared errors (down to 1e-9) are differences of nearly equal
    # images, so float32 rounding, which depends on the CPU's kernels and the batch, moves them by up
    # to 2e-4 relative (measured); in float64 by 1e-12.
    G = stylegan3("t").double()
    transform = G.synthesis.input.transform
    small = F.equivariance(G, num_samples=5, batch=2, return_errors=True)
    large = F.equivariance(G, num_samples=5, batch=5, return_errors=True)
    for kind in ("eq_t", "eq_t_frac", "eq_r"):
        np.testing.assert_allclose(small["errors"][kind], large["errors"][kind], rtol=1e-9)
    assert G.synthesis.input.transform is transform
    assert torch.equal(transform, torch.eye(3, dtype=torch.float64))
    alone = F.equivariance(G, ["eq_r"], num_samples=5, batch=5, return_errors=True)
    np.testing.assert_array_equal(alone["errors"]["eq_r"], large["errors"]["eq_r"])  # kinds independent


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"translate_max": 0.5}, r"translate_max must be in \[0, 0.5\)"),
        ({"rotate_max": -1}, r"rotate_max must be in \[0, 180\] degrees"),
        ({"lanczos_radius": 0}, "lanczos_radius must be an integer >= 1"),
        ({"num_samples": 0}, "num_samples must be >= 1"),
        ({"batch": 0}, "batch must be >= 1"),
        ({"shift": 1}, r"equivariance\(\) has no option\(s\) \['shift'\]"),
    ],
)
def test_options_are_checked_at_construction(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Equivariance(["eq_t"], {"equivariance": options})


def test_a_generator_without_input_transform_is_refused_before_any_work() -> None:
    G = tiny_stylegan2()
    message = (
        "eq_t needs a generator with an input transform (StyleGAN3's synthesis.input.transform); "
        "stylegan2-generator has none"
    )
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        equivariance_for(["fid", "eq_t"], None).check_generator(G)
    with pytest.raises(ValueError, match="eq_t, eq_r need a generator with an input transform"):
        F.equivariance(G, ["eq_t", "eq_r"], num_samples=2)


def test_suite_options_directions_and_names() -> None:
    assert effective_options(["eq_t", "eq_r"])["equivariance"] == {
        "num_samples": 50000,
        "translate_max": 0.125,
        "rotate_max": 180.0,
        "lanczos_radius": 8,  # the default None, as the protocol resolves it
        "batch": 16,
        "seed": 0,
        "protocol": "paper",
    }
    nvlabs = effective_options(["eq_r"], {"equivariance": {"protocol": "nvlabs"}})["equivariance"]
    assert nvlabs["lanczos_radius"] == 3
    assert metric_outputs(["eq_t", "eq_t_frac", "eq_r"]) == {"eq_t": "max", "eq_t_frac": "max", "eq_r": "max"}
    assert equivariance_for(["fid", "ppl"], None) is None
    assert equivariance_for(["eq_r", "ppl", "eq_t"], None).kinds == ["eq_r", "eq_t"]


def test_training_evaluator_gives_the_functional_values() -> None:
    dataset = ShapesDataset(resolution=32, size=4)
    options = {"equivariance": {"num_samples": 4, "batch": 3}}
    evaluate = GeneratorMetrics(dataset, ["eq_t_frac", "eq_t"], num_gen=4, options=options)
    G = stylegan3("t")
    results = evaluate(G, torch.device("cpu"))
    assert results == F.equivariance(G, ["eq_t_frac", "eq_t"], num_samples=4, batch=3)
    with pytest.raises(ValueError, match="eq_t_frac, eq_t need a generator with an input transform"):
        evaluate(tiny_stylegan2(), torch.device("cpu"))


def write_checkpoint(path, spec: dict) -> None:
    torch.manual_seed(0)
    G = build_network(spec)
    save_checkpoint(
        {"format": CHECKPOINT_FORMAT, "networks": {"generator": spec}, "G_ema": G.state_dict()}, path
    )


def test_studio_eval_from_a_checkpoint(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    real = tmp_path / "real"  # opened and counted, never read: generator metrics need no real images
    real.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(real / "0.png")
    spec = {"name": "stylegan3-generator", "version": 1, "kwargs": SG3_KWARGS}
    write_checkpoint(tmp_path / "sg3.ckpt", spec)
    out = tmp_path / "eq.json"
    options = ["options.equivariance.num_samples=4", "options.equivariance.batch=2"]
    code = main([f"real={real}", f"ckpt={tmp_path / 'sg3.ckpt'}", "metrics=[eq_t]", *options, f"out={out}"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    G = load_generator(tmp_path / "sg3.ckpt", torch.device("cpu"))
    assert report["results"] == F.equivariance(G, ["eq_t"], num_samples=4, batch=2)
    assert report["protocol"]["options"]["equivariance"]["translate_max"] == 0.125
    assert report["protocol"]["backbone"] is None  # no feature metric: no backbone was loaded
    nvlabs = [*options, "options.equivariance.protocol=nvlabs", f"out={out}"]
    assert main([f"ckpt={tmp_path / 'sg3.ckpt'}", "metrics=[eq_r]", *nvlabs]) == 0  # no real= needed
    report = json.loads(out.read_text())
    assert report["protocol"]["counts"] == {"real": None, "fake": 50000}
    assert report["protocol"]["sources"]["real"] is None
    expected = F.equivariance(G, ["eq_r"], num_samples=4, batch=2, protocol="nvlabs")
    assert report["results"] == expected != F.equivariance(G, ["eq_r"], num_samples=4, batch=2)
    assert report["protocol"]["options"]["equivariance"]["protocol"] == "nvlabs"
    assert report["protocol"]["options"]["equivariance"]["lanczos_radius"] == 3

    capsys.readouterr()
    assert main([f"ckpt={tmp_path / 'sg3.ckpt'}", "metrics=[eq_r,fid]", *options]) == 2
    assert "real=PATH is required" in capsys.readouterr().err  # fid reads real images

    tiny = {"channel_base": 128, "channel_max": 8}
    sg2 = {"name": "stylegan2-generator", "version": 1, "kwargs": {**SG3_KWARGS, "synthesis_kwargs": tiny}}
    write_checkpoint(tmp_path / "sg2.ckpt", sg2)
    capsys.readouterr()
    code = main([f"real={real}", f"ckpt={tmp_path / 'sg2.ckpt'}", "metrics=[eq_r]"])
    assert code == 2
    assert "eq_r needs a generator with an input transform" in capsys.readouterr().err


def test_the_metric_measures_fp16_layers_in_float32_and_restores_them() -> None:
    """NVlabs' eqt50k/eqr50k force fp32 synthesis; fp16 layers (CUDA only) would cap the PSNR."""
    G = stylegan3("t")
    assert all(layer.use_fp16 for layer in G.synthesis.layers)  # 32², num_fp16_res 4
    with float32_layers(G):
        assert not any(layer.use_fp16 for layer in G.synthesis.layers)
    with pytest.raises(RuntimeError, match="inside"), float32_layers(G):
        raise RuntimeError("inside")
    assert all(layer.use_fp16 for layer in G.synthesis.layers)
    seen = []
    layers = G.synthesis.layers
    G.synthesis.register_forward_hook(lambda *_: seen.append({layer.use_fp16 for layer in layers}))
    F.equivariance(G, ["eq_t"], num_samples=2, batch=2)
    assert seen == [{False}, {False}]  # the untransformed and the shifted synthesis
    assert all(layer.use_fp16 for layer in G.synthesis.layers)
