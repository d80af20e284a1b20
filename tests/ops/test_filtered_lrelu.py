"""filtered_lrelu against an independent numpy/scipy composition, plus gradients and argument errors."""

import itertools
import math

import numpy as np
import pytest
import scipy.signal
import torch

import ops


def _pad_or_crop(a: np.ndarray, px0: int, px1: int, py0: int, py1: int) -> np.ndarray:
    a = np.pad(a, ((max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    return a[max(-py0, 0) : a.shape[0] - max(-py1, 0), max(-px0, 0) : a.shape[1] - max(-px1, 0)]


def numpy_filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    """The definition, one image plane at a time: zero-stuff, pad, convolve2d (valid), x up**2, lrelu,
    gain, clip, convolve2d (valid), keep every down-th sample. 1-D filters act as their outer product."""
    fu2 = np.outer(fu, fu) if fu.ndim == 1 else fu
    fd2 = np.outer(fd, fd) if fd.ndim == 1 else fd
    planes = []
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        stuffed = np.zeros((x.shape[2] * up, x.shape[3] * up))
        stuffed[::up, ::up] = x[n, c] + b[c]
        v = scipy.signal.convolve2d(_pad_or_crop(stuffed, *padding), fu2, mode="valid") * up**2
        v = np.where(v >= 0, v, slope * v) * gain
        if clamp is not None:
            v = np.clip(v, -clamp, clamp)
        planes.append(scipy.signal.convolve2d(v, fd2, mode="valid")[::down, ::down])
    return np.stack(planes).reshape(x.shape[0], x.shape[1], *planes[0].shape)


def _case(seed, shape=(2, 3, 5, 6), fu_taps=4, fd_taps=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    b = rng.standard_normal(shape[1])
    fu = rng.uniform(0.1, 1, fu_taps)
    fd = rng.uniform(0.1, 1, (fd_taps, fd_taps - 1)) if fd_taps > 1 else rng.uniform(0.1, 1, 1)
    return x, b, fu / fu.sum(), fd / fd.sum()


def _ours(x, fu, fd, b, **kwargs):
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    return ops.filtered_lrelu(t(x), t(fu), t(fd), t(b), **kwargs).numpy()


@pytest.mark.parametrize(("up", "down"), list(itertools.product((1, 2, 4), (1, 2, 4))))
def test_vs_numpy_composition(up, down):
    x, b, fu, fd = _case(up * 10 + down)
    padding = (3, 2, 4, 1)
    expected = numpy_filtered_lrelu(x, fu, fd, b, up, down, padding, math.sqrt(2), 0.2, None)
    y = _ours(x, fu, fd, b, up=up, down=down, padding=padding)
    out_h = (5 * up + 4 + 1 - 4 + 1 - 4 + down) // down  # fu is 4x4, fd is 4 high, 3 wide
    out_w = (6 * up + 3 + 2 - 4 + 1 - 3 + down) // down
    assert y.shape == (2, 3, out_h, out_w)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_clamp_slope_gain_and_negative_padding():
    x, b, fu, fd = _case(5, fu_taps=8, fd_taps=3)
    x = 4 * x
    padding = (-1, 6, 5, -1)
    kwargs = dict(up=2, down=2, padding=padding, gain=1.3, slope=0.1, clamp=0.5)
    expected = numpy_filtered_lrelu(x, fu, fd, b, 2, 2, padding, 1.3, 0.1, 0.5)
    np.testing.assert_allclose(_ours(x, fu, fd, b, **kwargs), expected, rtol=1e-10, atol=1e-12)
    unclamped = _ours(x, fu, fd, b, **{**kwargs, "clamp": None})
    assert not np.allclose(unclamped, expected)


@pytest.mark.parametrize(("gain", "slope"), [(-0.7, 0.2), (1.0, 0.0), (2.0, -0.3), (0.0, 0.2)])
def test_any_gain_and_slope_sign(gain, slope):
    x, b, fu, fd = _case(8, fu_taps=3, fd_taps=2)
    kwargs = dict(up=2, down=2, padding=2, gain=gain, slope=slope, clamp=1.1)
    expected = numpy_filtered_lrelu(x, fu, fd, b, 2, 2, (2, 2, 2, 2), gain, slope, 1.1)
    np.testing.assert_allclose(_ours(x, fu, fd, b, **kwargs), expected, rtol=1e-10, atol=1e-12)
    xt = torch.from_numpy(x[:1, :1, :3, :3]).requires_grad_()
    fn = lambda x: ops.filtered_lrelu(x, torch.from_numpy(fu), torch.from_numpy(fd), **kwargs)  # noqa: E731
    assert torch.autograd.gradgradcheck(fn, (xt,), fast_mode=True)


def test_defaults_are_identity_filters_and_plain_lrelu():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    x_before = x.clone()
    expected = torch.where(x >= 0, x, 0.2 * x) * math.sqrt(2)
    torch.testing.assert_close(ops.filtered_lrelu(x), expected, rtol=1e-12, atol=1e-12)
    clamped = ops.filtered_lrelu(x, clamp=0.5)
    torch.testing.assert_close(clamped, expected.clamp(-0.5, 0.5), rtol=0, atol=1e-15)
    assert torch.equal(x, x_before)  # the in-place rectifier works on intermediates only


def test_separable_filter_matches_its_outer_product():
    x, b, fu, _ = _case(6, fu_taps=12)
    fd = ops.setup_filter(np.hanning(10) + 0.1).double()
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    sep = ops.filtered_lrelu(t(x), t(fu), fd, t(b), up=2, down=2, padding=10)
    full = ops.filtered_lrelu(t(x), t(np.outer(fu, fu)), torch.outer(fd, fd), t(b), up=2, down=2, padding=10)
    torch.testing.assert_close(sep, full, rtol=1e-10, atol=1e-12)


def test_gradcheck_and_gradgradcheck():
    x, b, fu, fd = (torch.from_numpy(a) for a in _case(7, shape=(1, 2, 3, 3), fu_taps=3, fd_taps=2))
    x.requires_grad_()
    b.requires_grad_()

    def fn(x, b):
        return ops.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=2, clamp=0.8)

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b), fast_mode=True)  # random projections, cheaper


def test_ref_and_auto_agree_and_bogus_impl_raises():
    x, b = torch.randn(2, 4, 8, 8), torch.randn(4)
    f = ops.setup_filter(np.hanning(12))
    kwargs = dict(up=2, down=2, padding=5, clamp=256)
    ref = ops.filtered_lrelu(x, f, f, b, impl="ref", **kwargs)
    assert torch.equal(ref, ops.filtered_lrelu(x, f, f, b, **kwargs))
    assert torch.equal(ref, ops.filtered_lrelu_ref(x, f, f, b, **kwargs))
    with pytest.raises(ValueError, match="impl must be one of"):
        ops.filtered_lrelu(x, f, f, b, impl="bogus")


def test_bad_arguments_say_what_is_wrong():
    x = torch.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"x must be \[N, C, H, W\]"):
        ops.filtered_lrelu(x[0])
    with pytest.raises(ValueError, match=r"b must have shape \[2\] \(channels\)"):
        ops.filtered_lrelu(x, b=torch.zeros(3))
    with pytest.raises(ValueError, match="up must be an int >= 1, got 0"):
        ops.filtered_lrelu(x, up=0)
    with pytest.raises(ValueError, match=r"down must be an int >= 1, got \(2, 2\)"):
        ops.filtered_lrelu(x, down=(2, 2))
    with pytest.raises(ValueError, match="clamp must be >= 0 or None"):
        ops.filtered_lrelu(x, clamp=-1.0)
    with pytest.raises(ValueError, match="gain and slope must be finite"):
        ops.filtered_lrelu(x, gain=float("nan"))
    with pytest.raises(ValueError, match="padding must be an int"):
        ops.filtered_lrelu(x, padding=(1, 2, 3))
