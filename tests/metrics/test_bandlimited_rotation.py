"""EQ-R under protocol="nvlabs": the band-limited rotation and pseudo-rotation against values of NVlabs'
operators, the filter's symmetries, the geometry on a band-limited image, and the protocol through
the metric (pooled aggregation, NVlabs' Lanczos-3 for eq_t_frac)."""

import math

import numpy as np
import pytest
import torch
from test_equivariance import FourierGenerator, stylegan3

import studio.metrics.functional as F
from studio.metrics.equivariance import Equivariance
from studio.metrics.functional.bandlimited_rotation import oriented_lowpass, pseudo_rotate, rotate_bandlimited
from studio.metrics.functional.equivariance import equivariance_errors, psnr_from_errors, rotation

# NVlabs/stylegan3 at 8fb5177, metrics/equivariance.py, on x = torch.randn(1, 1, 24, 24,
# generator=torch.Generator().manual_seed(0)) and angle = -radians(30) (studio's rotation(30)):
# apply_fractional_rotation(x, angle): row 12 at its valid columns 5..17, and the valid pixels per row;
# apply_fractional_pseudo_rotation(x, angle): row 12, columns 5..18 (its mask: pixels 5..18 of each axis).
NVLABS_ROTATED_ROW_12 = [
    -0.218, 0.75713, 1.81972, -0.32493, -0.37818, 0.80646, 1.89643, -0.07502, -0.11459, 0.45287, 0.55595,
    -0.21244, -0.38918,
]  # fmt: skip
NVLABS_ROTATED_VALID_PER_ROW = [
    0,
    0,
    0,
    0,
    2,
    4,
    7,
    8,
    11,
    14,
    14,
    14,
    13,
    14,
    12,
    11,
    8,
    6,
    3,
    1,
    0,
    0,
    0,
    0,
]
NVLABS_PSEUDO_ROW_12 = [
    -1.38925, 0.02978, -0.62558, -0.93006, 0.85473, -0.62914, 1.26491, 1.11759, -0.2402, 0.73965, -0.18602,
    -0.98469, -0.06219, -0.68473,
]  # fmt: skip


def test_operators_give_nvlabs_values() -> None:
    x = torch.randn(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    m = rotation(30.0)[None]
    rotated, valid = rotate_bandlimited(x, m)
    assert valid[0, 0].sum(dim=1).tolist() == NVLABS_ROTATED_VALID_PER_ROW
    assert valid[0, 0, 12].nonzero().flatten().tolist() == list(range(5, 18))
    # NVlabs' own sampling grid is float32 (about 3e-5 off the exact positions on noise like this).
    expected = torch.tensor(NVLABS_ROTATED_ROW_12)
    torch.testing.assert_close(rotated[0, 0, 12, 5:18], expected, atol=1e-4, rtol=0)
    pseudo, pseudo_valid = pseudo_rotate(x, m)
    assert pseudo_valid[0, 0].nonzero().amin().item() == 5 and pseudo_valid.sum() == 14 * 14
    torch.testing.assert_close(pseudo[0, 0, 12, 5:19], torch.tensor(NVLABS_PSEUDO_ROW_12), atol=2e-5, rtol=0)


def test_filter_symmetries_and_normalisation() -> None:
    identity = oriented_lowpass(torch.eye(2, dtype=torch.float64)[None], radius=3, up=4)[0]
    assert identity.shape == (47, 47)
    # Unrotated, the band is the square itself: the filter is separable (rank one).
    singular = torch.linalg.svdvals(identity)
    assert singular[1] < 1e-12 * singular[0]
    # Every polyphase component sums to 1 (16 of them at 4x).
    sums = torch.stack([identity[i::4, j::4].sum() for i in range(4) for j in range(4)])
    torch.testing.assert_close(sums, torch.ones(16, dtype=torch.float64), atol=1e-12, rtol=0)
    # A quarter turn maps the square onto itself; opposite turns give mirrored bands.
    quarter = oriented_lowpass(rotation(90)[None, :2, :2], radius=3, up=4)[0]
    torch.testing.assert_close(quarter, identity, atol=1e-12, rtol=0)
    plus, minus = oriented_lowpass(torch.stack([rotation(25), rotation(-25)])[:, :2, :2], radius=3, up=4)
    torch.testing.assert_close(plus, minus.flip(0), atol=1e-12, rtol=0)
    assert (plus - minus).abs().max() > 1e-2


def test_a_band_limited_image_rotates_to_the_rotated_continuous_image() -> None:
    size, f = 32, (4.5, -3.0)  # cycles per image: 0.28 and 0.19 of Nyquist
    coords = (torch.arange(size, dtype=torch.float64) + 0.5 - size / 2) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")

    def image(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        return torch.cos(2 * math.pi * (f[0] * xs + f[1] * ys) + 0.3)[None, None]

    # The bilinear step on the 4x grid costs about 9e-3 at 31 degrees (measured); a quarter turn lands on
    # pixel centres. A turn the wrong way would be off by up to 2.
    for degrees, tolerance in ((31.0, 2e-2), (-75.0, 2e-2), (90.0, 1e-5)):
        m = rotation(degrees)
        moved, valid = rotate_bandlimited(image(x, y).float(), m[None])
        expected = image(m[0, 0] * x + m[0, 1] * y, m[1, 0] * x + m[1, 1] * y)
        assert valid.sum() > 350
        assert (moved.double() - expected)[valid].abs().max() < tolerance
        # The content lies inside both bands: the pseudo-rotation leaves it (nearly) as it is.
        kept, kept_valid = pseudo_rotate(image(x, y).float(), m[None])
        assert (kept.double() - image(x, y))[kept_valid].abs().max() < 1e-3


def test_nvlabs_protocol_pools_errors_and_uses_lanczos_3() -> None:
    G = stylegan3("t")
    seeds = range(6)
    paper3 = equivariance_errors(G, seeds, ["eq_t_frac"], 0.125, 180.0, 3, 3, torch.device("cpu"))
    nvlabs = equivariance_errors(
        G, seeds, ["eq_t_frac", "eq_r"], 0.125, 180.0, None, 3, torch.device("cpu"), "nvlabs"
    )
    torch.testing.assert_close(nvlabs["eq_t_frac"], paper3["eq_t_frac"], atol=0, rtol=0)
    sums, counts = nvlabs["eq_r"][:, 0], nvlabs["eq_r"][:, 1]
    assert len(set(counts.tolist())) > 1  # masks differ by angle, so pooling is not averaging
    pooled = 10 * math.log10(4 / (sums.sum() / counts.sum()).item())
    averaged = 10 * math.log10(4 / (sums / counts).mean().item())
    assert psnr_from_errors(nvlabs["eq_r"], "nvlabs") == pytest.approx(pooled, abs=1e-12)
    assert psnr_from_errors(nvlabs["eq_r"], "paper") == pytest.approx(averaged, abs=1e-12)
    result = F.equivariance(G, ["eq_r"], num_samples=6, batch=3, protocol="nvlabs")
    assert result["eq_r"] == pytest.approx(pooled, abs=1e-12)


def test_nvlabs_protocol_on_an_exactly_equivariant_generator() -> None:
    """The Fourier-feature generator moves exactly: what remains is the operators' own error."""
    result = F.equivariance(FourierGenerator(), num_samples=16, batch=8, protocol="nvlabs")
    assert result["eq_t"] > 110  # measured 130 dB
    assert result["eq_t_frac"] > 55 and result["eq_r"] > 60  # measured 61 and 67 dB (paper: 75, 76)


def test_protocol_option_is_checked() -> None:
    with pytest.raises(ValueError, match="equivariance.*protocol.*'nvlab'"):
        Equivariance(["eq_r"], {"equivariance": {"protocol": "nvlab"}})
    with pytest.raises(ValueError, match=r"protocol must be one of \['paper', 'nvlabs'\], got 'x'"):
        F.equivariance(FourierGenerator(), ["eq_r"], num_samples=1, protocol="x")
    with pytest.raises(ValueError, match=r"equivariance\(\) has no protocol None"):
        Equivariance(["eq_r"], {"equivariance": {"protocol": None}})
    with pytest.raises(ValueError, match="lanczos_radius must be < 32 under protocol 'nvlabs'"):
        F.equivariance(FourierGenerator(), ["eq_r"], num_samples=1, lanczos_radius=32, protocol="nvlabs")
    with pytest.raises(ValueError, match=r"errors must be per-sample rows .* got shape \[3\]"):
        psnr_from_errors([0.1, 0.2, 0.3])


@pytest.mark.cuda
def test_nvlabs_protocol_on_cuda_gives_the_cpu_values(assert_cuda_kernels_in_use) -> None:
    """Filters are designed on the images' device, and the fp16 layers run in float32 with TF32 off for
    the metric (as NVlabs forces it): the CUDA errors equal the CPU ones to float32 noise."""
    G = stylegan3("r")
    assert all(layer.use_fp16 for layer in G.synthesis.layers)  # 32² and num_fp16_res 4: every layer
    options = {"metrics": ["eq_t_frac", "eq_r"], "num_samples": 4, "batch": 4, "protocol": "nvlabs"}
    cpu = F.equivariance(G, return_errors=True, **options)
    gpu = F.equivariance(G.cuda(), return_errors=True, **options)
    assert all(layer.use_fp16 for layer in G.synthesis.layers)  # restored
    for kind in ("eq_t_frac", "eq_r"):
        np.testing.assert_allclose(gpu["errors"][kind], cpu["errors"][kind], rtol=1e-2)
        assert gpu[kind] == pytest.approx(cpu[kind], abs=0.05)
    assert_cuda_kernels_in_use(("filtered_lrelu",), (torch.float32,))
