"""upfirdn2d and its wrappers against scipy.signal, plus gradients, sizes and argument errors."""

import importlib
import itertools

import numpy as np
import pytest
import scipy.signal
import torch

import ops

# The package re-exports the function under the module's name, so fetch the module itself.
upfirdn2d_module = importlib.import_module("ops.upfirdn2d")


def _window(full: np.ndarray, axis: int, taps: int, pad0: int, pad1: int, length: int) -> np.ndarray:
    """From a full convolution along axis (length + taps - 1 samples, zero outside), the samples that a
    valid convolution of the length-`length` input padded by (pad0, pad1) produces: sample j of that is
    full-convolution sample j + taps - 1 - pad0."""
    margin = abs(pad0) + abs(pad1) + taps + length
    full = np.pad(full, [(margin, margin) if a == axis else (0, 0) for a in range(full.ndim)])
    index = np.arange(length + pad0 + pad1 - taps + 1) + taps - 1 - pad0 + margin
    return np.take(full, index, axis=axis)


def scipy_upfirdn_1d(x: np.ndarray, f: np.ndarray, axis: int, up: int, down: int, pad: tuple[int, int]):
    """Our semantics along one axis, built on scipy.signal.upfirdn (zero-stuff + full convolution)."""
    full = scipy.signal.upfirdn(f, x, up=up, down=1, axis=axis)  # length (L-1)*up + k
    stuffed_len = x.shape[axis] * up
    full = np.pad(full, [(0, up - 1) if a == axis else (0, 0) for a in range(x.ndim)])  # = L*up + k - 1
    window = _window(full, axis, len(f), pad[0], pad[1], stuffed_len)
    return np.take(window, np.arange(0, window.shape[axis], down), axis=axis)


def scipy_upfirdn_2d(x: np.ndarray, f: np.ndarray, up, down, pad):
    """Our semantics with a 2-D filter: zero insertion, scipy.signal.convolve2d (full), window, stride."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
    h, w = x.shape
    stuffed = np.zeros((h * upy, w * upx))
    stuffed[::upy, ::upx] = x
    full = scipy.signal.convolve2d(stuffed, f, mode="full")
    full = _window(full, 0, f.shape[0], py0, py1, h * upy)
    full = _window(full, 1, f.shape[1], px0, px1, w * upx)
    return full[::downy, ::downx]


def _ours(x: np.ndarray, f: np.ndarray, **kwargs) -> np.ndarray:
    y = ops.upfirdn2d(torch.from_numpy(x)[None, None], torch.from_numpy(f), **kwargs)
    return y[0, 0].numpy()


def test_scipy_upfirdn_direct_matches_full_padding():
    """Anchor the helper: with padding (k-1, k-up) our output is scipy's upfirdn output itself."""
    rng = np.random.default_rng(1)
    x, f = rng.standard_normal((5, 7)), rng.standard_normal(3)
    for up, down in itertools.product((1, 2, 4), (1, 2, 4)):
        k = len(f)
        y = _ours(x, f, up=up, down=down, padding=(k - 1, k - up, k - 1, k - up))
        expected = scipy.signal.upfirdn(f, scipy.signal.upfirdn(f, x, up, down, axis=1), up, down, axis=0)
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


SEPARABLE_GRID = list(
    itertools.product((1, 2, 4), (1, 2, 4), (1, 2, 3, 4, 8, 12), ((0, 0), (3, 2), (-2, 1), (1, -3)))
)


@pytest.mark.parametrize(("up", "down", "taps", "pad"), SEPARABLE_GRID)
def test_separable_filter_vs_scipy(up, down, taps, pad):
    rng = np.random.default_rng(up * 100 + down * 10 + taps)
    x, f = rng.standard_normal((7, 9)), rng.standard_normal(taps)  # odd sizes
    px0, px1 = pad
    py0, py1 = pad[1], pad[0]
    padding = (px0, px1, py0, py1)
    if 7 * up + py0 + py1 - taps < 0 or 9 * up + px0 + px1 - taps < 0:
        with pytest.raises(ValueError, match="output would be empty"):
            _ours(x, f, up=up, down=down, padding=padding)
        return
    expected = scipy_upfirdn_1d(x, f, 1, up, down, (px0, px1))
    expected = scipy_upfirdn_1d(expected, f, 0, up, down, (py0, py1))
    y = _ours(x, f, up=up, down=down, padding=padding)
    assert y.shape == ((7 * up + py0 + py1 - taps + down) // down, (9 * up + px0 + px1 - taps + down) // down)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("up", "down", "shape", "pad"),
    [
        ((1, 1), (1, 1), (3, 3), (1, 1, 1, 1)),
        ((2, 2), (1, 1), (4, 4), (2, 1, 2, 1)),
        ((1, 1), (2, 2), (4, 4), (1, 1, 1, 1)),
        ((4, 4), (1, 1), (2, 3), (0, 0, 0, 0)),
        ((2, 1), (1, 2), (3, 2), (-1, 2, 3, 0)),
        ((2, 2), (2, 2), (5, 4), (4, 2, -1, 3)),
        ((1, 1), (4, 4), (3, 5), (2, 3, 4, 1)),
    ],
)
def test_2d_filter_vs_scipy_convolve2d(up, down, shape, pad):
    rng = np.random.default_rng(7)
    x, f = rng.standard_normal((6, 7)), rng.standard_normal(shape)
    expected = scipy_upfirdn_2d(x, f, up, down, pad)
    np.testing.assert_allclose(_ours(x, f, up=up, down=down, padding=pad), expected, rtol=1e-10, atol=1e-12)


def test_flip_filter_is_correlation_and_gain_scales():
    rng = np.random.default_rng(3)
    x, f2, f1 = rng.standard_normal((6, 5)), rng.standard_normal((3, 2)), rng.standard_normal(4)
    correlated = scipy.signal.correlate2d(x, f2, mode="valid")
    np.testing.assert_allclose(_ours(x, f2, flip_filter=True), correlated, rtol=1e-12)
    convolved = scipy.signal.convolve2d(x, f2, mode="valid")
    np.testing.assert_allclose(_ours(x, f2, gain=3.0), 3 * convolved, rtol=1e-12)
    separable = scipy.signal.convolve2d(x, np.outer(f1[::-1], f1[::-1]), mode="valid")
    np.testing.assert_allclose(_ours(x, f1, flip_filter=True, gain=2.0), 2 * separable, rtol=1e-12)


def test_batch_and_channels_are_filtered_independently():
    rng = np.random.default_rng(4)
    x, f = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((2, 3))
    y = ops.upfirdn2d(torch.from_numpy(x), torch.from_numpy(f), up=2, down=1, padding=1).numpy()
    for n, c in itertools.product(range(2), range(3)):
        expected = scipy_upfirdn_2d(x[n, c], f, (2, 2), (1, 1), (1, 1, 1, 1))
        np.testing.assert_allclose(y[n, c], expected, rtol=1e-10, atol=1e-12)


def test_cpu_batch_chunking_changes_nothing(monkeypatch):
    x = torch.randn(5, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    f = torch.rand(3, 4, dtype=torch.float64)
    whole = ops.upfirdn2d(x, f, up=2, down=1, padding=(1, 2, 3, 0))
    (grad_whole,) = torch.autograd.grad(whole.square().sum(), x)
    monkeypatch.setattr(upfirdn2d_module, "upfirdn2d_chunk_elements", lambda: 3 * 15 * 17 * 2)  # 2 a chunk
    chunked = ops.upfirdn2d(x, f, up=2, down=1, padding=(1, 2, 3, 0))
    (grad_chunked,) = torch.autograd.grad(chunked.square().sum(), x)
    assert torch.equal(whole, chunked) and torch.equal(grad_whole, grad_chunked)
    assert upfirdn2d_module._batch_chunk(x, 3 * 15 * 16) == 2


def test_setup_filter():
    f = ops.setup_filter([1, 3, 3, 1])
    assert f.dtype == torch.float32 and f.shape == (4, 4)
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, rtol=1e-7)
    long = ops.setup_filter(np.arange(1.0, 9.0))
    assert long.shape == (8,) and long.sum().item() == pytest.approx(1)
    assert ops.setup_filter([1, 2, 3], separable=True).shape == (3,)
    assert ops.setup_filter(np.arange(1.0, 9.0), separable=False).shape == (8, 8)
    assert torch.equal(ops.setup_filter(None), torch.ones(1, 1))
    flipped = ops.setup_filter([1, 2], flip_filter=True).numpy()
    np.testing.assert_allclose(flipped, np.array([[4, 2], [2, 1]]) / 9, rtol=1e-6)
    np.testing.assert_allclose(ops.setup_filter([1, 3, 3, 1], gain=4).sum().item(), 4, rtol=1e-6)
    np.testing.assert_allclose(ops.setup_filter([1, 3], gain=4, separable=True).numpy(), [0.5, 1.5])
    np.testing.assert_allclose(ops.setup_filter([1, 2], normalize=False).numpy(), [[1, 2], [2, 4]])
    with pytest.raises(ValueError, match="separable=True needs 1-D taps"):
        ops.setup_filter([[1, 2]], separable=True)
    with pytest.raises(ValueError, match="taps that sum to 0"):
        ops.setup_filter([1, -1])


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], np.arange(1.0, 13.0)])
@pytest.mark.parametrize("factor", [1, 2, 4])
def test_wrapper_sizes(taps, factor):
    x = torch.randn(2, 3, 8, 12)
    f = ops.setup_filter(taps)
    assert ops.filter2d(x, f).shape == x.shape
    assert ops.filter2d(x, f, padding=(1, 2, 0, 3)).shape == (2, 3, 11, 15)
    assert ops.upsample2d(x, f, up=factor).shape == (2, 3, 8 * factor, 12 * factor)
    assert ops.downsample2d(x, f, down=factor).shape == (2, 3, 8 // factor, 12 // factor)
    assert ops.upsample2d(x, f, up=(factor, 1)).shape == (2, 3, 8, 12 * factor)


def test_wrappers_keep_a_constant_level():
    x = torch.full((1, 2, 8, 8), 2.5, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1])
    up = ops.upsample2d(x, f)
    interior = up[..., 2:-2, 2:-2]  # away from the zero padding
    torch.testing.assert_close(interior, torch.full_like(interior, 2.5), rtol=1e-12, atol=1e-12)
    down = ops.downsample2d(x, f)
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full((1, 2, 2, 2), 2.5, dtype=torch.float64))
    same = ops.filter2d(x, f)
    torch.testing.assert_close(same[..., 2:-2, 2:-2], torch.full((1, 2, 4, 4), 2.5, dtype=torch.float64))


def test_wrapper_values_vs_scipy():
    rng = np.random.default_rng(5)
    x, taps = rng.standard_normal((6, 7)), np.array([1.0, 3.0, 3.0, 1.0])
    f2 = np.outer(taps, taps) / 64
    xt, ft = torch.from_numpy(x)[None, None], torch.from_numpy(f2)
    up = ops.upsample2d(xt, ft)[0, 0].numpy()
    np.testing.assert_allclose(up, 4 * scipy_upfirdn_2d(x, f2, (2, 2), (1, 1), (2, 1, 2, 1)), rtol=1e-10)
    down = ops.downsample2d(xt, ft)[0, 0].numpy()
    np.testing.assert_allclose(down, scipy_upfirdn_2d(x, f2, (1, 1), (2, 2), (1, 1, 1, 1)), rtol=1e-10)
    same = ops.filter2d(xt, ft)[0, 0].numpy()
    np.testing.assert_allclose(same, scipy.signal.convolve2d(x, f2, mode="same"), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("f", "kwargs"),
    [
        (torch.rand(3, 2, dtype=torch.float64), dict(up=2, down=1, padding=(1, 0, 2, 1))),
        (torch.rand(4, dtype=torch.float64), dict(up=1, down=2, padding=1)),
        (torch.rand(3, dtype=torch.float64), dict(up=2, down=2, padding=(-1, 2, 1, 0), flip_filter=True)),
    ],
)
def test_gradcheck_and_gradgradcheck(f, kwargs):
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    f = f.clone().requires_grad_()  # the reference path also differentiates with respect to the filter
    fn = lambda x, f: ops.upfirdn2d(x, f, gain=1.5, **kwargs)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, f))
    # fast_mode compares random projections of the second derivatives: much cheaper, still exact.
    assert torch.autograd.gradgradcheck(fn, (x, f), fast_mode=True)


def test_ref_and_auto_agree_and_bogus_impl_raises():
    x, f = torch.randn(2, 3, 8, 8), ops.setup_filter([1, 3, 3, 1])
    assert torch.equal(ops.upfirdn2d(x, f, up=2, padding=1, impl="ref"), ops.upfirdn2d(x, f, up=2, padding=1))
    assert torch.equal(ops.upfirdn2d_ref(x, f, down=2), ops.upfirdn2d(x, f, down=2, impl="auto"))
    for op in (ops.upfirdn2d, ops.filter2d, ops.upsample2d, ops.downsample2d):
        with pytest.raises(ValueError, match="impl must be one of"):
            op(x, f, impl="bogus")


def test_bad_arguments_say_what_is_wrong():
    x, f = torch.randn(1, 1, 4, 4), ops.setup_filter([1, 1])
    with pytest.raises(ValueError, match=r"x must be \[N, C, H, W\]"):
        ops.upfirdn2d(x[0], f)
    with pytest.raises(ValueError, match="up must be an int >= 1"):
        ops.upfirdn2d(x, f, up=0)
    with pytest.raises(ValueError, match="down must be an int >= 1 or a pair"):
        ops.upfirdn2d(x, f, down=(1, 2, 3))
    with pytest.raises(ValueError, match="padding must be an int"):
        ops.upfirdn2d(x, f, padding=(1, 2, 3))
    with pytest.raises(ValueError, match="filter must be a 1-D or 2-D tensor"):
        ops.upfirdn2d(x, [1, 1])
    with pytest.raises(ValueError, match="output would be empty"):
        ops.upfirdn2d(x, f, padding=-2)
