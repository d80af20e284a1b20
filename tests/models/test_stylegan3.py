"""StyleGAN3 generator (configs T and R): published parameter counts, the band-limit schedule, alias-free
resampling geometry, the Fourier input's transform, filtered_lrelu use, registry and sampling contracts."""

import dataclasses
import math

import numpy as np
import pytest
import torch

import models.stylegan3.layers as sg3_layers
import ops
from models import create_network, network_name
from models.stylegan3 import CONFIGS, Band, Generator, synthesis_schedule
from models.stylegan3.filters import jinc_lowpass, sinc_lowpass
from studio.sampling import images_for_seeds

# Forward passes use few channels: the cost on a CPU is in the resampling, not in the parameter count.
TINY = {"channel_base": 512, "channel_max": 16}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Forward passes here are tiny: intra-op threads gain nothing, and on a busy 2-core machine their
    hand-offs made each one 10-30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_generator(config: str = "t", **synthesis_kwargs) -> Generator:
    kwargs = {**CONFIGS[config], **TINY, **synthesis_kwargs}
    return Generator(z_dim=16, w_dim=16, img_resolution=32, synthesis_kwargs=kwargs)


def translation(dx: float, dy: float) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def test_cpu_yardstick_counts_exactly() -> None:
    G = Generator(
        img_resolution=32,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs={"channel_base": 4096, "channel_max": 128},
    )
    assert num_params(G) == 3_595_271  # measured on the reference implementation
    assert num_params(G.mapping) == 2 * (512 * 512 + 512)
    # Input: affine 512 -> 4 (+bias) and the 128x128 channel mixing; 14 layers of affine 512 -> 128 (+bias),
    # 3x3 conv 128 -> 128 and bias; ToRGB: affine, 1x1 conv 128 -> 3 and bias.
    layer = (512 * 128 + 128) + 128 * 128 * 9 + 128
    torgb = (512 * 128 + 128) + 128 * 3 + 3
    assert num_params(G.synthesis) == (512 * 4 + 4) + 128 * 128 + 14 * layer + torgb
    assert G.num_ws == 16


@pytest.mark.parametrize(
    ("config", "resolution", "millions"),
    [
        ("t", 256, 28.47),
        ("t", 512, 24.87),
        ("t", 1024, 22.31),
        ("r", 256, 18.82),
        ("r", 512, 16.67),
        ("r", 1024, 15.09),
    ],
)
def test_published_counts(config: str, resolution: int, millions: float) -> None:
    G = Generator(img_resolution=resolution, synthesis_kwargs=CONFIGS[config])
    assert round(num_params(G) / 1e4) / 100 == millions


def test_schedule_of_the_256_config_t() -> None:
    synthesis = Generator(img_resolution=256, synthesis_kwargs=CONFIGS["t"]).synthesis
    bands = synthesis.bands
    assert bands == synthesis_schedule(256, 3, channel_base=32768, channel_max=512)
    assert len(bands) == 15  # 14 layers + ToRGB
    # Cutoff 2 * 64 ** (i / 12): it doubles every second layer up to 128 = 256 / 2 at layer 12.
    np.testing.assert_allclose([b.cutoff for b in bands[:13:2]], [2, 4, 8, 16, 32, 64, 128])
    # Stopband 2 ** (2.1 + 5.2 i / 12); rate = smallest power of two >= twice it (capped at 256).
    np.testing.assert_allclose(bands[6].stopband, 2**4.7)
    assert [b.sampling_rate for b in bands] == [16] * 3 + [32] * 2 + [64] * 2 + [128] * 3 + [256] * 5
    assert [b.size for b in bands[::3]] == [36, 52, 84, 148, 276]
    assert [b.size for b in bands[-2:]] == [256, 256]  # no margins in the last layer and ToRGB
    assert bands[0].half_width == pytest.approx(6.0)  # max(2 ** 2.1, 16 / 2) - 2
    assert [b.channels for b in bands] == [512] * 9 + [362, 256, 181, 128, 128, 3]  # min(16384 / cutoff, 512)
    for i, b in enumerate(bands):
        assert b.sampling_rate >= min(2 * b.stopband, 256)
        assert b.critically_sampled == (i >= 12)
        assert (b.cutoff == b.sampling_rate / 2) == b.critically_sampled
    # Leaky ReLUs run at twice the higher of the two rates; layer 3 goes from 16 to 32 samples per unit.
    assert [(layer.up, layer.down) for layer in synthesis.layers[2:5]] == [(2, 2), (4, 2), (2, 2)]
    assert [layer.band_out.size for layer in synthesis.layers[-2:]] == [276, 256]


@pytest.mark.parametrize("config", ["t", "r"])
def test_forward_shapes_dtype_and_finiteness(config: str) -> None:
    G = tiny_generator(config)
    fp16_layers = [layer for layer in G.synthesis.layers if layer.use_fp16]
    dtypes = []
    for layer in fp16_layers:
        layer.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    img = G(torch.randn(2, 16))
    assert img.shape == (2, 3, 32, 32)
    assert img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.std() > 0
    assert fp16_layers and dtypes == [torch.float32] * len(fp16_layers)  # fp16 layers compute in fp32 on CPU


def test_fused_and_per_sample_modconv_agree() -> None:
    G = tiny_generator("t")
    ws = G.mapping(torch.randn(3, 16), None)
    per_sample = G.synthesis(ws, fused_modconv=False)
    fused = G.synthesis(ws, fused_modconv=True)
    torch.testing.assert_close(fused, per_sample, rtol=1e-4, atol=1e-5 * per_sample.abs().max().item())
    with pytest.raises(ValueError, match=r"ws must be \[N, 16, 16\]"):
        G.synthesis(ws[:, 1:])


def test_every_layer_goes_through_filtered_lrelu(monkeypatch) -> None:
    G = tiny_generator("t", num_layers=8)
    calls = []

    def spy(x, fu, fd, *args, **kwargs):
        calls.append((x.shape[2], kwargs["up"], kwargs["down"]))
        return ops.filtered_lrelu(x, fu, fd, *args, **kwargs)

    monkeypatch.setattr(sg3_layers, "filtered_lrelu", spy)
    G(torch.randn(2, 16), None)
    assert G.num_ws == 10
    # The full conv adds k - 1 samples: its (k - 1) / 2 partial sums beyond each edge.
    full_sizes = [layer.band_in.size + layer.weight.shape[-1] - 1 for layer in G.synthesis.layers]
    layers = G.synthesis.layers
    assert calls == [(n, layer.up, layer.down) for n, layer in zip(full_sizes, layers, strict=True)]


def sinusoid_phase(band: Band, fx: float, fy: float) -> torch.Tensor:
    """2 pi (f . p + 0.1) at the pixel centres p of `band`'s grid: [size, size], float64."""
    coords = (torch.arange(band.size, dtype=torch.float64) + 0.5 - band.size / 2) / band.sampling_rate
    return 2 * math.pi * (fx * coords[None, :] + fy * coords[:, None] + 0.1)


@pytest.mark.parametrize("config", ["t", "r"])
def test_resampling_keeps_output_pixels_centred(config: str) -> None:
    """With a linear activation, a band-limited sinusoid on each layer's input grid comes out as the same
    sinusoid on its output grid, only attenuated: no phase shift from the padding."""
    G = tiny_generator(config)
    for layer in G.synthesis.layers:
        band_in, band_out = layer.band_in, layer.band_out
        f = (0.7 * band_in.cutoff, 0.3 * band_in.cutoff)
        # The full conv's output grid: band_in's, extended by (k - 1) / 2 samples each side.
        conv_grid = dataclasses.replace(band_in, size=band_in.size + layer.weight.shape[-1] - 1)
        x = sinusoid_phase(conv_grid, *f).sin().float()[None, None]
        y = ops.filtered_lrelu(
            x,
            layer.up_filter,
            layer.down_filter,
            up=layer.up,
            down=layer.down,
            padding=layer.padding,
            gain=1,
            slope=1,
        )
        assert y.shape[2:] == (band_out.size, band_out.size)
        inner = slice(8, band_out.size - 8)  # away from the zero padding beyond the margins
        phase = sinusoid_phase(band_out, *f)[inner, inner].reshape(-1)
        basis = torch.stack([phase.sin(), phase.cos()], dim=1)
        fit = torch.linalg.lstsq(basis, y[0, 0, inner, inner].double().reshape(-1, 1))
        amplitude, quadrature = fit.solution.reshape(-1).tolist()
        assert amplitude > 0.4
        assert abs(quadrature) < 1e-4


def test_filters_have_unit_gain_and_the_jinc_is_isotropic() -> None:
    jinc = jinc_lowpass(12, cutoff=8, half_width=8, sampling_rate=64)
    sinc = sinc_lowpass(12, cutoff=8, half_width=8, sampling_rate=64)
    assert jinc.sum() == pytest.approx(1) and sinc.sum() == pytest.approx(1)
    np.testing.assert_allclose(jinc, jinc.T)
    np.testing.assert_allclose(jinc, np.rot90(jinc))

    def response(taps_2d: np.ndarray, fx: float, fy: float) -> float:
        t = (np.arange(12) - 5.5) / 64
        return (np.exp(-2j * np.pi * fy * t) @ taps_2d @ np.exp(-2j * np.pi * fx * t)).real

    def anisotropy(taps_2d: np.ndarray, f: float) -> float:
        """Response at radius f along an axis minus along the diagonal."""
        return response(taps_2d, f, 0) - response(taps_2d, f / math.sqrt(2), f / math.sqrt(2))

    separable = np.outer(sinc, sinc)  # config T's filter, square: the comparison below has teeth
    radii = (4, 8, 12, 16)
    jinc_worst = max(abs(anisotropy(jinc, f)) for f in radii)
    separable_worst = max(abs(anisotropy(separable, f)) for f in radii)
    # The reference's separable Kaiser window w(x) w(y) leaves the jinc slightly anisotropic (0.008
    # here, against 0.059 for the separable sinc); a radial window w(r) would give 0.003.
    assert jinc_worst < 0.01 and separable_worst > 0.05


def test_config_r_uses_radial_filters_except_in_critically_sampled_layers() -> None:
    G = tiny_generator("r")
    for layer in G.synthesis.layers:
        assert layer.weight.shape[-1] == 1
        assert layer.up_filter.ndim == 1  # up-sampling stays separable
        assert layer.down_filter.ndim == (1 if layer.band_out.critically_sampled else 2)
    assert all(layer.down_filter.ndim == 1 for layer in tiny_generator("t").synthesis.layers)


def test_input_transform_shifts_the_fourier_features_by_whole_pixels() -> None:
    G = tiny_generator()
    inp = G.synthesis.input
    assert torch.equal(inp.transform, torch.eye(3))
    w = torch.randn(2, 16)
    x = inp(w)
    rate = inp.band.sampling_rate
    # Output pixel p shows the features at T p = p + (3, -2) pixels: 3 columns right, 2 rows up.
    inp.transform.copy_(translation(3 / rate, -2 / rate))
    shifted = inp(w)
    torch.testing.assert_close(shifted[..., 2:, :-3], x[..., :-2, 3:], atol=1e-5, rtol=0)
    inp.transform.copy_(torch.eye(3))
    torch.testing.assert_close(inp(w), x, atol=0, rtol=0)


@pytest.mark.parametrize("config", ["t", "r"])
@torch.no_grad()
def test_translating_the_input_translates_the_image(config: str) -> None:
    G = tiny_generator(config)
    ws = G.mapping(torch.randn(2, 16), None)
    img = G.synthesis(ws)
    # One output pixel is half a pixel of the input's 16 samples per unit: a sub-pixel shift for the
    # input layer, which alias-free layers carry to the image as a clean one-pixel shift.
    G.synthesis.input.transform.copy_(translation(1 / 32, 0))
    moved = G.synthesis(ws)
    inner = (..., slice(4, -4), slice(4, -5))
    peak = img.abs().max()
    assert (moved - img)[inner].abs().max() > 0.05 * peak
    mse = (moved[inner] - img[..., 4:-4, 5:-4]).square().mean()
    assert 10 * torch.log10(peak**2 / mse) > 50  # equivariance PSNR in dB
    G.synthesis.input.transform.copy_(torch.eye(3))  # the identity gives the default output back
    torch.testing.assert_close(G.synthesis(ws), img, atol=0, rtol=0)


def test_magnitude_emas_update_only_with_update_emas() -> None:
    G = tiny_generator()
    emas = [layer.magnitude.magnitude_ema for layer in G.synthesis.layers] + [
        G.synthesis.torgb.magnitude.magnitude_ema
    ]
    z = torch.randn(4, 16)
    G(z, None, noise_mode="const")  # noise_mode is accepted and ignored
    assert all(ema.item() == 1 for ema in emas)
    G(z, None, update_emas=True)
    assert all(ema.item() != 1 for ema in emas)
    beta = 0.5 ** (32 / 20_000)
    assert G.synthesis.layers[0].magnitude.beta == pytest.approx(beta)


def test_registry_round_trip_and_state_dict() -> None:
    kwargs = {"z_dim": 16, "w_dim": 16, "img_resolution": 32, "synthesis_kwargs": {**CONFIGS["r"], **TINY}}
    G = create_network("stylegan3-generator", 1, **kwargs)
    assert isinstance(G, Generator) and network_name(G) == ("stylegan3-generator", 1)
    G.synthesis.input.transform.copy_(translation(0.25, 0))
    fresh = create_network("stylegan3-generator", 1, **kwargs)
    fresh.load_state_dict(G.state_dict())  # strict: the random Fourier frequencies and transform travel too
    assert {
        "synthesis.input.freqs",
        "synthesis.input.transform",
        "synthesis.torgb.magnitude.magnitude_ema",
    } <= set(G.state_dict())
    z = torch.randn(2, 16)
    torch.testing.assert_close(fresh(z), G(z), atol=0, rtol=0)


def test_studio_sampling_works_unchanged() -> None:
    G = tiny_generator()
    images = images_for_seeds(G, [3, 4], truncation_psi=0.7)
    assert images.shape == (2, 3, 32, 32)
    torch.testing.assert_close(images_for_seeds(G, [4], truncation_psi=0.7), images[1:])


@pytest.mark.cuda
def test_fp16_layers_on_cuda_agree_with_fp32(assert_cuda_kernels_in_use) -> None:
    G = tiny_generator().cuda()
    assert all(layer.use_fp16 for layer in G.synthesis.layers[-4:])
    G32 = tiny_generator(num_fp16_res=0, conv_clamp=256).cuda()
    G32.load_state_dict(G.state_dict())
    z = torch.randn(2, 16, device="cuda")
    img, ref = G(z), G32(z)
    assert img.dtype == torch.float32 and torch.isfinite(img).all()
    assert (img - ref).abs().max() < 0.02 * ref.abs().max()
    assert_cuda_kernels_in_use(("bias_act", "filtered_lrelu"), (torch.float32, torch.float16))


@pytest.mark.parametrize("config", ["t", "r"])
def test_fp16_layers_emulated_on_cpu_agree_with_fp32(config: str, monkeypatch) -> None:
    """The fp16 path's casts, run on the CPU (where layers compute in fp32): forward and backward in
    float16 work, give float32 images and gradients, and agree with fp32 to fp16 precision. What only
    a GPU can show (the CUDA filtered_lrelu in fp16) is the `cuda` test above.

    The loss is a sum: a mean over the 6,144 image values scales the gradients into fp16's subnormal
    range (below 6e-5), where they keep few digits (measured: errors up to 100% on some parameters,
    varying with the CPU's kernels). The input affine's gradient sums many opposite contributions, so
    its relative error is the largest (measured up to 9%); every parameter is checked by direction."""
    torch.manual_seed(0)
    G = tiny_generator(config)
    assert all(layer.use_fp16 for layer in G.synthesis.layers[-4:])
    z = torch.randn(2, 16)
    ref = G(z)
    ref.square().sum().backward()
    ref_grads = [p.grad.clone() for p in G.parameters()]
    G.zero_grad(set_to_none=True)
    half_everywhere = lambda fp16, device, dtype: torch.float16 if fp16 else dtype  # noqa: E731
    monkeypatch.setattr(sg3_layers, "compute_dtype", half_everywhere)
    dtypes = []
    for layer in G.synthesis.layers:
        layer.register_forward_hook(lambda module, inputs, out: dtypes.append((module.use_fp16, out.dtype)))
    img = G(z)
    img.square().sum().backward()
    # Each layer computes and returns its own precision (a mixed-dtype op would silently promote).
    assert dtypes == [(fp16, torch.float16 if fp16 else torch.float32) for fp16, _ in dtypes]
    assert img.dtype == torch.float32 and (img - ref).abs().max() < 0.01 * ref.abs().max()  # measured 0.4%
    grads = [p.grad for p in G.parameters()]
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    flat, ref_flat = torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in ref_grads])
    assert (flat - ref_flat).norm() <= 0.02 * ref_flat.norm()  # measured <= 0.5% (16 seeds, T and R)
    for g, ref_g in zip(grads, ref_grads, strict=True):
        assert torch.cosine_similarity(g.flatten(), ref_g.flatten(), dim=0) >= 0.99  # measured >= 0.998


def test_set_motion_translates_right_and_down_and_rotates_counter_clockwise():
    # Config R (1x1 convs, radial filters) at 32²: a quarter turn is exact up to float rounding; a
    # translation by whole output pixels is a fraction of a pixel in the layers sampled more coarsely,
    # so it holds to the filters' alias suppression (differences below 1e-4 of outputs near 0.1).
    kwargs = {
        "channel_base": 512,
        "channel_max": 16,
        "num_layers": 4,
        "conv_kernel": 1,
        "use_radial_filters": True,
    }
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, img_resolution=32, synthesis_kwargs=kwargs).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        plain = G(z)
        G.set_motion(rotate=90)
        turned = G(z)
        G.set_motion(translate=(2 / 32, 1 / 32))  # 2 pixels right, 1 down
        moved = G(z)
        G.set_motion()
        restored = G(z)
    inner = (..., slice(6, -6), slice(6, -6))
    torch.testing.assert_close(turned[inner], plain.rot90(1, dims=(2, 3))[inner], atol=1e-6, rtol=0)
    torch.testing.assert_close(moved[..., 7:-5, 8:-4], plain[..., 6:-6, 6:-6], atol=1e-4, rtol=0)
    assert (moved[..., 6:-6, 6:-6] - plain[..., 6:-6, 6:-6]).abs().max() > 0.01
    assert torch.equal(restored, plain)
