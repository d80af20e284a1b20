"""Building blocks against independent references written with plain torch.nn.functional."""

import math

import pytest
import torch
import torch.nn.functional as F

import ops
from models.stylegan2.layers import Conv2dLayer, FullyConnected, MinibatchStdDev, conv2d_down2, conv2d_up2
from models.stylegan2.modconv import modulated_conv2d

FIR = (1.0, 3.0, 3.0, 1.0)


def fir_depthwise(x: torch.Tensor, padding: int, gain: float = 1.0) -> torch.Tensor:
    """Reference FIR filter: the normalized 2-D outer product of FIR as a depthwise conv (it is symmetric)."""
    taps = torch.tensor(FIR, dtype=x.dtype)
    kernel = torch.outer(taps, taps) / taps.sum() ** 2 * gain
    weight = kernel.expand(x.shape[1], 1, 4, 4)
    return F.conv2d(F.pad(x, [padding] * 4), weight, groups=x.shape[1])


def test_fully_connected_equalized_lr_and_bias_init() -> None:
    torch.manual_seed(0)
    layer = FullyConnected(64, 32, lr_multiplier=0.01, bias_init=0.5)
    assert layer.weight.std().item() == pytest.approx(100, rel=0.05)  # stored N(0,1) / lr_multiplier
    x = torch.randn(5, 64)
    expected = x @ (layer.weight * 0.01 / math.sqrt(64)).t() + 0.5
    torch.testing.assert_close(layer(x), expected)


def test_fully_connected_lrelu_has_gain_sqrt2() -> None:
    layer = FullyConnected(8, 4, activation="lrelu")
    x = torch.randn(3, 8)
    linear = x @ (layer.weight / math.sqrt(8)).t()
    torch.testing.assert_close(layer(x), F.leaky_relu(linear, 0.2) * math.sqrt(2))


def test_conv2d_up2_is_transposed_conv_then_fir_without_intermediate_crop() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    # Reference: zero-insert to 2H-1, full correlation with the weight (pad k-1), then FIR cropped to 2H.
    stuffed = torch.zeros(2, 3, 9, 9, dtype=torch.float64)
    stuffed[:, :, ::2, ::2] = x
    full = F.conv2d(F.pad(stuffed, [2, 2, 2, 2]), weight)  # 11 x 11
    expected = fir_depthwise(full, padding=1, gain=4)  # 10 x 10
    got = conv2d_up2(x, weight, ops.setup_filter(list(FIR)).double())
    assert got.shape == (2, 4, 10, 10)
    torch.testing.assert_close(got, expected)


def test_conv2d_up2_grouped_equals_per_group_convs() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 6, 4, 4)
    weight = torch.randn(4, 3, 3, 3)  # 2 groups, 3 in / 2 out each
    fir = ops.setup_filter(list(FIR))
    got = conv2d_up2(x, weight, fir, groups=2)
    expected = torch.cat(
        [conv2d_up2(x[:, :3], weight[:2], fir), conv2d_up2(x[:, 3:], weight[2:], fir)], dim=1
    )
    torch.testing.assert_close(got, expected)


def test_conv2d_down2_is_fir_then_strided_conv() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    fir = ops.setup_filter(list(FIR)).double()
    expected = F.conv2d(fir_depthwise(x, padding=2), weight, stride=2)
    got = conv2d_down2(x, weight, fir)
    assert got.shape == (2, 4, 4, 4)
    torch.testing.assert_close(got, expected)
    # 1x1: filter with pad 1, keep every other sample, then the 1x1 conv.
    w1 = torch.randn(4, 3, 1, 1, dtype=torch.float64)
    expected1 = F.conv2d(fir_depthwise(x, padding=1)[:, :, ::2, ::2], w1)
    torch.testing.assert_close(conv2d_down2(x, w1, fir), expected1)


def test_conv2d_layer_down_gain_and_clamp() -> None:
    torch.manual_seed(0)
    layer = Conv2dLayer(3, 4, 3, activation="lrelu", down=2, gain=0.5, conv_clamp=0.3)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 3, 8, 8)
    w = layer.weight / math.sqrt(27)
    pre = F.conv2d(fir_depthwise(x, padding=2), w, stride=2) + layer.bias[:, None, None]
    expected = (F.leaky_relu(pre, 0.2) * math.sqrt(2) * 0.5).clamp(-0.15, 0.15)
    torch.testing.assert_close(layer(x), expected)


def naive_modulated_conv(x, weight, styles, demodulate, up):
    """Per-sample loop straight from the paper's equations (float64)."""
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n][None, :, None, None]
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xn = x[n : n + 1]
        if up == 2:
            outs.append(conv2d_up2(xn, w, ops.setup_filter(list(FIR)).double()))
        else:
            outs.append(F.conv2d(xn, w, padding=w.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv_matches_per_sample_reference(up: int, demodulate: bool, fused: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, 6, 6, dtype=torch.float64)
    weight = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    styles = torch.randn(3, 5, dtype=torch.float64) + 1
    fir = ops.setup_filter(list(FIR)).double()
    got = modulated_conv2d(x, weight, styles, demodulate=demodulate, up=up, resample_filter=fir, fused=fused)
    torch.testing.assert_close(got, naive_modulated_conv(x, weight, styles, demodulate, up))


def test_demodulation_restores_unit_std_per_channel() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 32, 24, 24)
    weight = torch.randn(8, 32, 3, 3) * torch.linspace(0.1, 10, 8)[:, None, None, None]
    styles = torch.rand(16, 32) * 4
    for fused in (True, False):
        y = modulated_conv2d(x, weight, styles, demodulate=True, fused=fused)[:, :, 1:-1, 1:-1]  # no border
        std = y.transpose(0, 1).reshape(8, -1).std(dim=1)
        torch.testing.assert_close(std, torch.ones(8), atol=0.03, rtol=0)
    raw = modulated_conv2d(x, weight, styles, demodulate=False)[:, :, 1:-1, 1:-1]
    assert raw.transpose(0, 1).reshape(8, -1).std(dim=1).min() > 2  # without demodulation it is not 1


@pytest.mark.parametrize("fused", [True, False])
def test_float16_modulated_conv_cannot_overflow_at_the_clamp(fused: bool) -> None:
    # The worst input an fp16 layer gets: activations at the conv clamp's scale (256), aligned with one
    # filter of 512 x 3 x 3 taps. Before demodulation the per-sample path's conv sums 4,608 such products,
    # ~2e5 with filters scaled to max |w| = 1 (inf in float16); scaled to unit L2 norm it stays below
    # the patch's norm, 200 * 68 = 1.4e4. Output and gradients must be finite and right.
    torch.manual_seed(0)
    weight = torch.randn(4, 512, 3, 3)
    x = 200 * weight[:1].sign().expand(2, -1, -1, -1)  # [2, 512, 3, 3]: aligned with filter 0
    styles = torch.rand(2, 512) + 0.5
    expected = modulated_conv2d(x.double(), weight.double(), styles.double(), fused=fused)
    styles_16 = styles.clone().requires_grad_(True)
    got = modulated_conv2d(x.half(), weight, styles_16, fused=fused)
    assert got.dtype == torch.float16 and torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=2e-3 * expected.abs().max().item())
    got.float().clamp(-256, 256).sum().backward()  # as the layer's bias_act clamps; an inf here gave NaN
    assert torch.isfinite(styles_16.grad).all() and styles_16.grad.abs().max() > 0


def test_minibatch_stddev_matches_loop_reference() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 4, 3, 3)
    y = MinibatchStdDev(group_size=3, num_channels=2)(x)
    assert y.shape == (6, 6, 3, 3)
    torch.testing.assert_close(y[:, :4], x)
    for n in range(6):
        group = x[n % 2 :: 2]  # samples n, n + N/G, ... form a group
        for f in range(2):
            std = group[:, 2 * f : 2 * f + 2].std(dim=0, unbiased=False)
            expected = (std.square() + 1e-8).sqrt().mean()
            torch.testing.assert_close(y[n, 4 + f], expected.expand(3, 3))


def test_minibatch_stddev_rejects_indivisible_batch() -> None:
    with pytest.raises(ValueError, match="batch size 6 is not divisible by the group size 4"):
        MinibatchStdDev(group_size=4)(torch.randn(6, 4, 2, 2))
