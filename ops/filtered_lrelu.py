"""The alias-free leaky ReLU of StyleGAN3 (`filtered_lrelu`), with its plain-PyTorch reference path.

y = upfirdn2d(clamp(lrelu(upfirdn2d(x + b, fu, up, padding, gain=up**2)) * gain), fd, down): the
nonlinearity runs at the higher sampling rate, between an interpolation and a low-pass filter.
"""

import math

import torch

from ops import _dispatch
from ops.bias_act import bias_act_ref, clamped_rectifier_
from ops.upfirdn2d import Pair, parse_padding, upfirdn2d_ref


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Pair = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
    impl: str = "auto",
) -> torch.Tensor:
    """Bias, upsample + filter (fu), leaky ReLU, gain, clamp, filter (fd) + downsample.

    x: [N, C, H, W]. fu, fd: filters from ops.setup_filter ([k] separable or [fh, fw]) or None for
    the identity. b: [C] bias added before upsampling. up, down: int factors >= 1. padding: int,
    (px, py) or (px0, px1, py0, py1) applied to the upsampled image. slope: negative slope;
    clamp: None for no clamping. Output: [N, C, (H*up + py0 + py1 - fuh + 1 - fdh + down) // down, ...].
    """
    kernel = _dispatch.cuda_impl("filtered_lrelu", impl, x)
    kwargs = dict(
        fu=fu,
        fd=fd,
        b=b,
        up=up,
        down=down,
        padding=padding,
        gain=gain,
        slope=slope,
        clamp=clamp,
        flip_filter=flip_filter,
    )
    if kernel is None:
        return filtered_lrelu_ref(x, **kwargs)
    try:
        return kernel(x=x, **kwargs)
    except RuntimeError as err:
        # The fused kernel checks its shared-memory and grid limits before it launches anything.
        if impl == "cuda" or KERNEL_LIMIT_HINT not in str(err):
            raise
        reason = str(err).splitlines()[0].removesuffix(KERNEL_LIMIT_HINT).rstrip("; ")
        _dispatch.warn_once(
            "filtered_lrelu", "limits", f"ops.{reason}: impl='auto' uses the reference for it"
        )
        return filtered_lrelu_ref(x, **kwargs)


KERNEL_LIMIT_HINT = "; use impl='ref'"  # how the kernel's size-limit errors end (ops/csrc/prepare.h)


def filtered_lrelu_ref(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Pair = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Plain-PyTorch filtered_lrelu (same arguments, minus impl); differentiable twice via autograd."""
    _check_args(x, b, up, down, gain, slope, clamp)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    padding = parse_padding(padding)
    if gain > 0 and slope > 0:
        # lrelu is positively homogeneous, so the gain folds into the up-filter's gain; the filter output
        # is fresh, so rectifying and clamping happen in place (two passes fewer over the largest tensor).
        x = upfirdn2d_ref(x, fu, up=up, padding=padding, gain=up**2 * gain, flip_filter=flip_filter)
        x = clamped_rectifier_(x, "lrelu", slope, clamp)
    else:
        x = upfirdn2d_ref(x, fu, up=up, padding=padding, gain=up**2, flip_filter=flip_filter)
        x = bias_act_ref(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d_ref(x, fd, down=down, flip_filter=flip_filter)


def _check_args(
    x: torch.Tensor,
    b: torch.Tensor | None,
    up: int,
    down: int,
    gain: float,
    slope: float,
    clamp: float | None,
) -> None:
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu: x must be [N, C, H, W], got shape {list(x.shape)}")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ValueError(f"filtered_lrelu: b must have shape [{x.shape[1]}] (channels), got {list(b.shape)}")
    for name, factor in (("up", up), ("down", down)):
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"filtered_lrelu: {name} must be an int >= 1, got {factor!r}")
    if not math.isfinite(gain) or not math.isfinite(slope):
        raise ValueError(f"filtered_lrelu: gain and slope must be finite, got gain={gain}, slope={slope}")
    if clamp is not None and not clamp >= 0:
        raise ValueError(f"filtered_lrelu: clamp must be >= 0 or None, got {clamp}")
