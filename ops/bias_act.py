"""Fused bias + activation + gain + clamp (`bias_act`), with its plain-PyTorch reference path.

y = clamp(act(x + b) * gain, -clamp, clamp), b broadcast along axis `dim` of x.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ops import _dispatch


@dataclass(frozen=True)
class Activation:
    """An activation `fn(x, alpha)` and the defaults bias_act uses when alpha/gain are None."""

    fn: Callable[[torch.Tensor, float], torch.Tensor]
    default_alpha: float
    default_gain: float


# Gain sqrt(2) keeps the activation variance of unit-variance inputs for the rectifier-like functions.
ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, alpha: x, 0.0, 1.0),
    "relu": Activation(lambda x, alpha: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, alpha: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, alpha: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, alpha: F.elu(x, alpha), 1.0, 1.0),
    "selu": Activation(lambda x, alpha: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, alpha: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, alpha: F.silu(x), 0.0, math.sqrt(2)),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """Add bias `b` ([x.shape[dim]]) along axis `dim`, apply `act`, scale by `gain`, clamp to ±clamp.

    act: one of ACTIVATIONS; alpha: its parameter (lrelu negative slope, default 0.2; elu, default 1.0);
    gain: defaults to sqrt(2) for relu, lrelu, swish and 1 otherwise; clamp: None for no clamping.
    impl: "auto" | "cuda" | "ref". Returns a tensor shaped like x; differentiable twice.
    """
    fn = _dispatch.cuda_impl("bias_act", impl, x) or bias_act_ref
    return fn(x=x, b=b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def bias_act_ref(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Plain-PyTorch bias_act (same arguments, minus impl); gradients come from autograd."""
    activation = _check_args(x, b, dim, act, clamp)
    alpha = activation.default_alpha if alpha is None else float(alpha)
    gain = activation.default_gain if gain is None else float(gain)
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        b = b.to(x.dtype).reshape(shape)
    homogeneous = act in ("linear", "relu", "lrelu") and gain > 0 and (act != "lrelu" or alpha > 0)
    if homogeneous and (b is not None or gain != 1):
        # Positive homogeneity: gain * act(x + b) = act(gain * x + gain * b), one fresh tensor.
        y = x * gain if b is None else torch.add(b * gain, x, alpha=gain)
        return clamped_rectifier_(y, act, alpha, clamp)
    if b is not None:
        x = x + b
    x = activation.fn(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def clamped_rectifier_(y: torch.Tensor, act: str, alpha: float, clamp: float | None) -> torch.Tensor:
    """clamp(act(y), -clamp, clamp) computed in place in y, for act linear, relu, or lrelu with alpha > 0.

    y must be a fresh intermediate that no autograd node saved. The act is increasing with act(c) = c
    and act(-c/alpha) = -c, so clamping its input to [-c/alpha, c] (lrelu), (-inf, c] (relu) or [-c, c]
    (linear) equals clamping its output; autograd then keeps one tensor instead of three.
    """
    if clamp is not None:
        low = -clamp / alpha if act == "lrelu" else None if act == "relu" else -clamp
        y = y.clamp_(low, clamp)
    if act == "relu":
        return F.relu(y, inplace=True)
    if act == "lrelu":
        return F.leaky_relu(y, alpha, inplace=True)
    return y


def _check_args(
    x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, clamp: float | None
) -> Activation:
    if act not in ACTIVATIONS:
        raise ValueError(f"bias_act: unknown act {act!r}; choose one of {sorted(ACTIVATIONS)}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"bias_act: dim={dim} is out of range for x with {x.ndim} dimensions")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[dim]):
        raise ValueError(
            f"bias_act: b must have shape [{x.shape[dim]}] (x.shape[dim={dim}]), got {list(b.shape)}"
        )
    if clamp is not None and clamp < 0:
        raise ValueError(f"bias_act: clamp must be >= 0 or None, got {clamp}")
    return ACTIVATIONS[act]
