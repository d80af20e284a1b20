"""filtered_lrelu on the fused kernel (ops/csrc/filtered_lrelu.cu), differentiable twice.

The forward never writes the upsampled intermediate to global memory; when a gradient is needed it
stores one byte per intermediate sample saying whether the leaky ReLU was on its positive or negative
branch or clamped. With those codes held constant the op is linear in x, so the backward is
    dx = upsample-adjoint(codes-multiplier * downsample-adjoint(dy)),
built from the differentiable upfirdn2d Function: second derivatives are exact almost everywhere, as for
any piecewise-linear function. Input layouts are read through strides; the output keeps x's layout.
"""

import math

import torch

from ops import _build
from ops._cuda_upfirdn2d import Geometry, correlation_weights, transpose
from ops.filtered_lrelu import _check_args
from ops.upfirdn2d import parse_padding

# Codes of ops/csrc/filtered_lrelu.cuh (enum LreluCode): the branch each intermediate sample took.
POSITIVE, NEGATIVE, CLAMPED = 0, 1, 2


class _FilteredLrelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, wu, wd, up_geom: Geometry, down_geom: Geometry, gain, slope, clamp, needs_codes):
        (upx, upy), (downx, downy) = up_geom.up, down_geom.down
        y, codes = _build.build("filtered_lrelu").module.filtered_lrelu(
            x, b, wu, wd, upx, upy, downx, downy, *up_geom.pad, float(upx * upy), gain, slope,
            -1.0 if clamp is None else float(clamp), needs_codes,
        )  # fmt: skip
        ctx.save_for_backward(wu, wd, codes)
        ctx.geoms, ctx.in_size, ctx.gain, ctx.slope = (up_geom, down_geom), tuple(x.shape[2:]), gain, slope
        ctx.clamped = clamp is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        wu, wd, codes = ctx.saved_tensors
        dx = db = None
        if codes is not None:  # written whenever x or b required a gradient (the filters never get one)
            up_geom, down_geom = ctx.geoms
            dt = transpose(dy, wd, down_geom, 1.0, tuple(codes.shape[2:]))
            # d(clamp(lrelu(u) * gain))/du per code. Masks of the 1-byte codes keep memory low and need no
            # host-to-device copy (CUDA-graph safe); du stays linear in dt, so it differentiates again.
            du = torch.where(codes == POSITIVE, dt * ctx.gain, dt * (ctx.gain * ctx.slope))
            if ctx.clamped:
                du = du.masked_fill_(codes == CLAMPED, 0.0)  # where's output is not saved for backward
            upx, upy = up_geom.up
            dx = transpose(du, wu, up_geom, float(upx * upy), ctx.in_size)
            db = dx.sum(dim=[0, 2, 3]) if ctx.needs_input_grad[1] else None
        return dx, db, None, None, None, None, None, None, None, None


SQRT2 = math.sqrt(2)


def filtered_lrelu(
    x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=SQRT2, slope=0.2, clamp=None, flip_filter=False
) -> torch.Tensor:
    """ops.filtered_lrelu (same arguments, minus impl) on the fused CUDA kernel. Filters get no gradient."""
    _check_args(x, b, up, down, gain, slope, clamp)
    # 1-D filters stay 1-D: the kernel's separable stages, and separable passes in the backward.
    wu = correlation_weights(fu, flip_filter, x.device)
    wd = correlation_weights(fd, flip_filter, x.device)
    up_geom = Geometry(up=(up, up), down=(1, 1), pad=parse_padding(padding))
    down_geom = Geometry(up=(1, 1), down=(down, down), pad=(0, 0, 0, 0))
    b = None if b is None else b.to(x.dtype)
    # Decided here, not in forward (where needs_input_grad is set even under no_grad / inference_mode).
    needs_codes = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    args = (up_geom, down_geom, float(gain), float(slope), clamp, needs_codes)
    return _FilteredLrelu.apply(x, b, wu, wd, *args)
