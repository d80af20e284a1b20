"""bias_act on the compiled kernel (ops/csrc/bias_act.cu), differentiable twice.

The kernel evaluates D_n(g, x, b) = g * gain * act^(n)(x + b) * [not clamped] for n = 1, 2 besides the
forward (n = 0). D_n is linear in g, and d/dx D_n = D_{n+1}(g * incoming), so each backward is again an
autograd.Function of the same family: first and second derivatives come out exact (third ones raise).
NCHW and channels_last (any dense layout) are processed in place; other strides are made contiguous.
"""

from dataclasses import dataclass

import torch

from ops import _build
from ops.bias_act import ACTIVATIONS, _check_args

# Activation ids of ops/csrc/bias_act.cuh (enum Act).
ACT_IDS = {
    "linear": 0,
    "relu": 1,
    "lrelu": 2,
    "tanh": 3,
    "sigmoid": 4,
    "elu": 5,
    "selu": 6,
    "softplus": 7,
    "swish": 8,
}
MAX_ORDER = 2  # highest derivative the kernel evaluates


@dataclass(frozen=True)
class _Spec:
    dim: int
    act: int
    alpha: float
    gain: float
    clamp: float  # -1: no clamp


def _kernel(x, b, g, spec: _Spec, order: int) -> torch.Tensor:
    module = _build.build("bias_act").module
    return module.bias_act(x, b, g, spec.dim, spec.act, order, spec.alpha, spec.gain, spec.clamp)


def _bias_grad(dx: torch.Tensor, dim: int) -> torch.Tensor:
    others = [d for d in range(dx.ndim) if d != dim]
    return dx.sum(dim=others) if others else dx  # sum(dim=[]) would sum over every dim


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, spec: _Spec):
        ctx.save_for_backward(x, b)
        ctx.spec = spec
        return _kernel(x, b, None, spec, 0)

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        dx = _Derivative.apply(dy, x, b, ctx.spec, 1)
        db = _bias_grad(dx, ctx.spec.dim) if ctx.needs_input_grad[1] else None
        return dx, db, None


class _Derivative(torch.autograd.Function):
    """D_order(g, x, b) = g * gain * act^(order)(x + b) * [not clamped]."""

    @staticmethod
    def forward(ctx, g, x, b, spec: _Spec, order: int):
        ctx.save_for_backward(g, x, b)
        ctx.spec, ctx.order = spec, order
        return _kernel(x, b, g, spec, order)

    @staticmethod
    def backward(ctx, dout):
        g, x, b = ctx.saved_tensors
        spec, order = ctx.spec, ctx.order
        dg = _Derivative.apply(dout, x, b, spec, order) if ctx.needs_input_grad[0] else None
        dx = db = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            if order >= MAX_ORDER:
                raise RuntimeError(
                    "bias_act (CUDA) has first and second derivatives only; use impl='ref' for higher ones"
                )
            dx = _Derivative.apply(dout * g, x, b, spec, order + 1)
            db = _bias_grad(dx, spec.dim) if ctx.needs_input_grad[2] else None
        return dg, dx, db, None, None


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None) -> torch.Tensor:
    """ops.bias_act (same arguments, minus impl) on the CUDA kernel."""
    activation = _check_args(x, b, dim, act, clamp)
    spec = _Spec(
        dim=dim % x.ndim,
        act=ACT_IDS[act],
        alpha=activation.default_alpha if alpha is None else float(alpha),
        gain=activation.default_gain if gain is None else float(gain),
        clamp=-1.0 if clamp is None else float(clamp),
    )
    return _BiasAct.apply(x, None if b is None else b.to(x.dtype), spec)


assert set(ACT_IDS) == set(ACTIVATIONS), "ops/_cuda_bias_act.py: ACT_IDS out of sync with ACTIVATIONS"
