"""bias_act against direct elementwise formulas, plus gradients and the impl switch."""

import math

import numpy as np
import pytest
import torch

import ops

# Independent formulas in numpy, with the default alpha and gain each activation must use.
NUMPY_ACTS = {
    "linear": (lambda v, a: v, None, 1.0),
    "relu": (lambda v, a: np.maximum(v, 0), None, math.sqrt(2)),
    "lrelu": (lambda v, a: np.where(v >= 0, v, a * v), 0.2, math.sqrt(2)),
    "tanh": (lambda v, a: np.tanh(v), None, 1.0),
    "sigmoid": (lambda v, a: 1 / (1 + np.exp(-v)), None, 1.0),
    "elu": (lambda v, a: np.where(v >= 0, v, a * (np.exp(v) - 1)), 1.0, 1.0),
    "selu": (
        lambda v, a: 1.0507009873554805 * np.where(v >= 0, v, 1.6732632423543772 * (np.exp(v) - 1)),
        None,
        1.0,
    ),
    "softplus": (lambda v, a: np.log1p(np.exp(v)), None, 1.0),
    "swish": (lambda v, a: v / (1 + np.exp(-v)), None, math.sqrt(2)),
}


def _inputs(shape=(2, 5, 3, 4), dim=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    b = torch.randn(shape[dim], generator=g, dtype=torch.float64)
    return x, b


def test_activation_table_matches_the_contract():
    assert sorted(ops.ACTIVATIONS) == sorted(NUMPY_ACTS)


@pytest.mark.parametrize("act", sorted(NUMPY_ACTS))
def test_default_alpha_and_gain(act):
    x, b = _inputs()
    fn, alpha, gain = NUMPY_ACTS[act]
    expected = fn(x.numpy() + b.numpy()[None, :, None, None], alpha) * gain
    np.testing.assert_allclose(ops.bias_act(x, b, act=act).numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ["lrelu", "elu", "tanh", "swish"])
def test_explicit_alpha_gain_clamp(act):
    x, b = _inputs()
    fn, _, _ = NUMPY_ACTS[act]
    y = ops.bias_act(x, b, act=act, alpha=0.3, gain=1.7, clamp=0.9)
    expected = np.clip(fn(x.numpy() + b.numpy()[None, :, None, None], 0.3) * 1.7, -0.9, 0.9)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert y.abs().max().item() == pytest.approx(0.9)


@pytest.mark.parametrize("act", ["linear", "relu", "lrelu"])
@pytest.mark.parametrize(("alpha", "gain"), [(None, None), (0.1, 2.5), (0.0, 1.0), (-0.2, 1.3), (0.3, -1.5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_rectifiers_any_sign_of_alpha_and_gain(act, alpha, gain, with_bias):
    x, b = _inputs(shape=(1, 3, 2, 3))
    b = b if with_bias else None
    x_before = x.clone()
    fn, default_alpha, default_gain = NUMPY_ACTS[act]
    v = x.numpy() + (b.numpy()[None, :, None, None] if with_bias else 0)
    a = default_alpha if alpha is None else alpha
    g = default_gain if gain is None else gain
    expected = np.clip(fn(v, a) * g, -0.7, 0.7)
    y = ops.bias_act(x, b, act=act, alpha=alpha, gain=gain, clamp=0.7)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(x, x_before)
    inputs = (x.requires_grad_(),) if b is None else (x.requires_grad_(), b.requires_grad_())
    call = lambda x, b=None: ops.bias_act(x, b, act=act, alpha=alpha, gain=gain, clamp=0.7)  # noqa: E731
    assert torch.autograd.gradgradcheck(call, inputs)


def test_no_bias_and_other_dims():
    x, _ = _inputs()
    np.testing.assert_allclose(
        ops.bias_act(x, act="lrelu").numpy(), np.where(x >= 0, x, 0.2 * x) * math.sqrt(2), rtol=1e-12
    )
    for dim in (0, 2, 3, -1):
        x, b = _inputs(dim=dim)
        shape = [1] * 4
        shape[dim] = -1
        expected = np.maximum(x.numpy() + b.numpy().reshape(shape), 0) * math.sqrt(2)
        np.testing.assert_allclose(ops.bias_act(x, b, dim=dim, act="relu").numpy(), expected, rtol=1e-12)


def test_2d_input_like_a_fully_connected_layer():
    x, b = _inputs(shape=(3, 6))
    expected = np.tanh(x.numpy() + b.numpy()[None, :])
    np.testing.assert_allclose(ops.bias_act(x, b, act="tanh").numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("act", sorted(NUMPY_ACTS))
def test_gradcheck_and_gradgradcheck(act):
    x, b = _inputs(shape=(2, 3, 2, 2))
    x = (x + 0.05).requires_grad_()  # keep kinks (relu/lrelu at 0) away from finite-difference steps
    b = b.requires_grad_()
    clamp = 1.5 if act in ("linear", "lrelu") else None
    fn = lambda x, b: ops.bias_act(x, b, act=act, clamp=clamp)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_ref_and_auto_agree_and_bogus_impl_raises():
    x, b = _inputs()
    assert torch.equal(ops.bias_act(x, b, act="lrelu", impl="ref"), ops.bias_act(x, b, act="lrelu"))
    assert torch.equal(ops.bias_act_ref(x, b, act="lrelu"), ops.bias_act(x, b, act="lrelu"))
    with pytest.raises(ValueError, match="impl must be one of"):
        ops.bias_act(x, b, impl="bogus")


def test_bad_arguments_say_what_is_wrong():
    x, b = _inputs()
    with pytest.raises(ValueError, match="unknown act 'gelu'"):
        ops.bias_act(x, b, act="gelu")
    with pytest.raises(ValueError, match=r"b must have shape \[5\]"):
        ops.bias_act(x, b[:3])
    with pytest.raises(ValueError, match="dim=4 is out of range"):
        ops.bias_act(x, dim=4)
    with pytest.raises(ValueError, match="clamp must be >= 0"):
        ops.bias_act(x, clamp=-1)
