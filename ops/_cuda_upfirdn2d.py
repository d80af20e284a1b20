"""upfirdn2d on the compiled kernel (ops/csrc/upfirdn2d.cu), differentiable to any order.

The kernel only correlates with 2-D float32 weights; flipping, separable filters and argument parsing
happen here. A separable filter of k >= SEPARABLE_MIN_TAPS taps runs as two 1-D passes (2k multiply-adds
per output instead of k^2). The gradient of upfirdn2d is upfirdn2d again (up and down swapped, weights
flipped, padding adjusted), so the backward calls the same autograd.Function and higher derivatives
follow by recursion. Any memory layout is read natively through strides; the output keeps x's layout
(NCHW or channels_last).
"""

from dataclasses import dataclass

import torch

from ops import _build
from ops.upfirdn2d import _check_output_size, parse_padding, parse_scale


@dataclass(frozen=True)
class Geometry:
    """Resampling of one upfirdn2d call: factors as (x, y), padding as (px0, px1, py0, py1)."""

    up: tuple[int, int]
    down: tuple[int, int]
    pad: tuple[int, int, int, int]

    def transposed(self, in_size: tuple[int, int], out_size: tuple[int, int], taps: tuple[int, int]):
        """Geometry of the adjoint: maps an output-sized gradient back to `in_size` (H, W).

        Along one axis, output o reads padded sample o*down + t, i.e. input i where i*up = o*down + t - p0.
        With flipped weights t -> k-1-t, that is the forward formula with up/down swapped and leading
        padding k-1-p0; the trailing padding makes the result exactly `in_size` long.
        """
        (h, w), (oh, ow), (kh, kw) = in_size, out_size, taps
        (upx, upy), (downx, downy) = self.up, self.down
        px0, _, py0, _ = self.pad
        pad = (
            kw - 1 - px0,
            w * upx - ow * downx + px0 - upx + 1,
            kh - 1 - py0,
            h * upy - oh * downy + py0 - upy + 1,
        )
        return Geometry(up=self.down, down=self.up, pad=pad)


def correlation_weights(f: torch.Tensor | None, flip_filter: bool, device: torch.device) -> torch.Tensor:
    """The kernels' float32 correlation weights for a filter from ops.setup_filter (or None): [fh, fw], or
    a 1-D filter's [k] taps, separable: used along both axes (its 2-D form is the outer product).

    Detached: the kernels give filters no gradient. flip_filter=False means a true convolution, i.e.
    correlation with the flipped filter.
    """
    if f is None:
        return torch.ones(1, 1, device=device)
    f = f.detach().to(device=device, dtype=torch.float32)  # filters are constants on the CUDA path
    return (f if flip_filter else f.flip(list(range(f.ndim)))).contiguous()


def taps_shape(w: torch.Tensor) -> tuple[int, int]:
    """(fh, fw) of correlation weights: [fh, fw], or [k] taps used along both axes."""
    return (w.shape[0], w.shape[0]) if w.ndim == 1 else (w.shape[0], w.shape[1])


def _extension():
    return _build.build("upfirdn2d").module


class _UpFirDn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, geom: Geometry, gain: float) -> torch.Tensor:
        (upx, upy), (downx, downy) = geom.up, geom.down
        y = _extension().upfirdn2d(x, w, upx, upy, downx, downy, *geom.pad, gain)
        ctx.save_for_backward(w)
        ctx.geom, ctx.gain, ctx.in_size = geom, gain, tuple(x.shape[2:])
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        (w,) = ctx.saved_tensors
        return transpose(dy, w, ctx.geom, ctx.gain, ctx.in_size), None, None, None


# From this length on, two 1-D passes beat one 2-D pass despite writing and reading the intermediate:
# 2k multiply-adds per output against k^2 (4-tap filters, as StyleGAN2's, stay one pass: 16 against 8).
SEPARABLE_MIN_TAPS = 8


def resample(x: torch.Tensor, w: torch.Tensor, geom: Geometry, gain: float) -> torch.Tensor:
    """gain * upfirdn of x [N, C, H, W] with correlation weights w ([fh, fw], or [k] taps along both
    axes); differentiable in x."""
    if w.ndim == 2:
        return _UpFirDn2d.apply(x, w, geom, gain)
    if w.shape[0] < SEPARABLE_MIN_TAPS:
        return _UpFirDn2d.apply(x, torch.outer(w, w), geom, gain)
    # The axes resample independently: along x with [1, k], then along y with [k, 1].
    (upx, upy), (downx, downy) = geom.up, geom.down
    px0, px1, py0, py1 = geom.pad
    x = _UpFirDn2d.apply(x, w[None, :], Geometry((upx, 1), (downx, 1), (px0, px1, 0, 0)), 1.0)
    return _UpFirDn2d.apply(x, w[:, None], Geometry((1, upy), (1, downy), (0, 0, py0, py1)), gain)


def transpose(dy: torch.Tensor, w: torch.Tensor, geom: Geometry, gain: float, in_size: tuple[int, int]):
    """The adjoint of resample(·, w, geom, gain) on inputs of spatial size in_size, applied to dy."""
    tgeom = geom.transposed(in_size, tuple(dy.shape[2:]), taps_shape(w))
    return resample(dy, w.flip(list(range(w.ndim))), tgeom, gain)


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1) -> torch.Tensor:
    """ops.upfirdn2d (same arguments, minus impl) on the CUDA kernel. The filter gets no gradient."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d: x must be [N, C, H, W], got shape {list(x.shape)}")
    w = correlation_weights(f, flip_filter, x.device)
    geom = Geometry(parse_scale(up, "up"), parse_scale(down, "down"), parse_padding(padding))
    fh, fw = taps_shape(w)
    _check_output_size(x, fw, fh, geom.up, geom.down, geom.pad)
    return resample(x, w, geom, float(gain))
