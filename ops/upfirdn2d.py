"""Upsample, pad, FIR-filter, downsample 2-D images (`upfirdn2d`) and its same-size/up/down wrappers.

Semantics per axis match scipy.signal.upfirdn: insert up-1 zeros after every sample, pad (negative
values crop), convolve with the filter in valid mode (a true convolution unless flip_filter), keep every
down-th sample starting at 0. A 1-D filter is applied separably, along W then H.
"""

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ops import _dispatch
from ops.cpu_tuning import upfirdn2d_chunk_elements

Pair = int | Sequence[int]
FilterLike = torch.Tensor | np.ndarray | Sequence | float | None


def setup_filter(
    f: FilterLike,
    device: torch.device | str = "cpu",
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Turn filter taps into the float32 tensor the filtering ops take.

    f: 1-D [k] or 2-D [fh, fw] taps, or None for the identity [1]. normalize: scale to sum 1.
    gain: overall gain (a separable 1-D filter gets sqrt(gain), applied once per axis).
    separable: keep a 1-D filter 1-D (applied along each axis) instead of its 2-D outer product;
    None means True for >= 8 taps. Returns [k] or [fh, fw] on `device`.
    """
    taps = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32)
    if taps.ndim == 0:
        taps = taps[None]
    if taps.ndim not in (1, 2) or taps.numel() == 0:
        raise ValueError(f"setup_filter: f must be 1-D or 2-D non-empty taps, got shape {list(taps.shape)}")
    if separable is None:
        separable = taps.ndim == 1 and taps.numel() >= 8
    if separable and taps.ndim == 2:
        raise ValueError("setup_filter: separable=True needs 1-D taps, got a 2-D filter")
    if taps.ndim == 1 and not separable:
        taps = torch.outer(taps, taps)
    if normalize:
        total = taps.sum()
        if total == 0:
            raise ValueError("setup_filter: cannot normalize taps that sum to 0; pass normalize=False")
        taps = taps / total
    if flip_filter:
        taps = taps.flip(list(range(taps.ndim)))
    taps = taps * (gain ** (taps.ndim / 2))
    return taps.to(device=device)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Pair = 1,
    down: Pair = 1,
    padding: Pair = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Upsample by `up`, pad by `padding`, filter with `f`, multiply by `gain`, downsample by `down`.

    x: [N, C, H, W]. f: [fh, fw], [k] (separable) or None (identity). up/down: int or (x, y).
    padding: int, (px, py) or (px0, px1, py0, py1); negative values crop. flip_filter: correlate
    instead of convolve. Returns [N, C, (H*up + py0 + py1 - fh + down) // down, (likewise for W)].
    """
    fn = _dispatch.cuda_impl("upfirdn2d", impl, x) or upfirdn2d_ref
    return fn(x=x, f=f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


def upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Pair = 1,
    down: Pair = 1,
    padding: Pair = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Plain-PyTorch upfirdn2d (same arguments, minus impl): depthwise conv over all channels at once."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d: x must be [N, C, H, W], got shape {list(x.shape)}")
    f = _as_filter(f).to(device=x.device, dtype=x.dtype)
    upx, upy = parse_scale(up, "up")
    downx, downy = parse_scale(down, "down")
    px0, px1, py0, py1 = parse_padding(padding)
    _check_output_size(x, f.shape[-1], f.shape[0], (upx, upy), (downx, downy), (px0, px1, py0, py1))
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        passes = [(f * gain, (upx, upy), (downx, downy), (px0, px1, py0, py1))]
    else:
        f = f * gain**0.5
        passes = [
            (f[None, :], (upx, 1), (downx, 1), (px0, px1, 0, 0)),
            (f[:, None], (1, upy), (1, downy), (0, 0, py0, py1)),
        ]
    channels, height, width = x.shape[1:]
    padded_h = height * upy + max(py0, 0) + max(py1, 0)
    largest_per_sample = channels * padded_h * (width * upx + max(px0, 0) + max(px1, 0))
    outputs = []
    for chunk in x.split(_batch_chunk(x, largest_per_sample)):
        for kernel, up_xy, down_xy, pad in passes:
            chunk = _upfirdn_pass(chunk, kernel, up_xy, down_xy, pad)
        outputs.append(chunk)
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _batch_chunk(x: torch.Tensor, largest_per_sample: int) -> int:
    """Samples per chunk: the whole batch on GPU; on CPU, as many as keep intermediates cache-sized."""
    if x.device.type != "cpu":
        return max(x.shape[0], 1)
    return max(1, upfirdn2d_chunk_elements() // max(largest_per_sample, 1))


def _upfirdn_pass(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    pad: tuple[int, int, int, int],
) -> torch.Tensor:
    """One upfirdn with a 2-D `kernel` [kh, kw] (true-convolution orientation) on every channel of x."""
    channels = x.shape[1]
    kh, kw = kernel.shape
    (upx, upy), (downx, downy) = up, down
    px0, px1, py0, py1 = pad
    if upx == 1 and upy == 1:
        # Pad/crop first so the strided conv computes only the kept outputs.
        weight = kernel.flip([0, 1])[None, None].expand(channels, 1, kh, kw)
        x = F.pad(x, [px0, px1, py0, py1])
        return F.conv2d(x, weight, stride=(downy, downx), groups=channels)
    # The transposed conv is the full convolution of the zero-stuffed input (polyphase, no zeros are
    # multiplied), minus the trailing up-1 zero samples; the pad then selects the window `pad` asks for.
    weight = kernel[None, None].expand(channels, 1, kh, kw)
    x = F.conv_transpose2d(x, weight, stride=(upy, upx), groups=channels)
    x = F.pad(x, [px0 - (kw - 1), px1 + upx - kw, py0 - (kh - 1), py1 + upy - kh])
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    padding: Pair = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Filter x [N, C, H, W] with f keeping the size (plus `padding`, same formats as upfirdn2d)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    padding = (px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2)
    return upfirdn2d(x, f, padding=padding, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Pair = 2,
    padding: Pair = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Upsample x [N, C, H, W] to exactly [N, C, H*up, W*up] (plus `padding`) and filter with f.

    The gain is multiplied by up**2 so a normalized filter keeps the signal level.
    """
    upx, upy = parse_scale(up, "up")
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    padding = (
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    )
    return upfirdn2d(
        x, f, up=(upx, upy), padding=padding, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl
    )


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down: Pair = 2,
    padding: Pair = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Filter x [N, C, H, W] with f and downsample to exactly [N, C, H//down, W//down] (plus `padding`)."""
    downx, downy = parse_scale(down, "down")
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    padding = (
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    )
    return upfirdn2d(
        x, f, down=(downx, downy), padding=padding, flip_filter=flip_filter, gain=gain, impl=impl
    )


def parse_scale(value: Pair, name: str) -> tuple[int, int]:
    """An up/down factor given as int or (x, y), as a validated (x, y) pair of ints >= 1."""
    pair = _int_tuple((value, value) if _is_int(value) else value)
    if pair is None or len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be an int >= 1 or a pair (x, y) of them, got {value!r}")
    return pair


def parse_padding(padding: Pair) -> tuple[int, int, int, int]:
    """Padding given as int, (px, py) or (px0, px1, py0, py1), as (px0, px1, py0, py1)."""
    values = _int_tuple((padding,) * 4 if _is_int(padding) else padding)
    if values is None or len(values) not in (2, 4):
        raise ValueError(f"padding must be an int, (px, py) or (px0, px1, py0, py1) of ints, got {padding!r}")
    if len(values) == 2:
        return (values[0], values[0], values[1], values[1])
    return values


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer))


def _int_tuple(values: object) -> tuple[int, ...] | None:
    """values as a tuple of Python ints, or None when it is not a sequence of integers."""
    if not isinstance(values, (Sequence, np.ndarray)) or not all(_is_int(v) for v in values):
        return None
    return tuple(int(v) for v in values)


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(fw, fh) of a filter from setup_filter; a 1-D [k] filter is k × k, None is 1 × 1."""
    if f is None:
        return 1, 1
    f = _as_filter(f)
    return f.shape[-1], f.shape[0]


def _as_filter(f: torch.Tensor | None) -> torch.Tensor:
    if f is None:
        return torch.ones(1, 1)
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2) or f.numel() == 0:
        shape = list(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
        raise ValueError(f"filter must be a 1-D or 2-D tensor from ops.setup_filter (or None), got {shape}")
    if not f.is_floating_point():
        raise ValueError(f"filter must be floating point, got {f.dtype}; build it with ops.setup_filter")
    return f


def _check_output_size(
    x: torch.Tensor,
    fw: int,
    fh: int,
    up: tuple[int, int],
    down: tuple[int, int],
    pad: tuple[int, int, int, int],
) -> None:
    out_w = (x.shape[3] * up[0] + pad[0] + pad[1] - fw + down[0]) // down[0]
    out_h = (x.shape[2] * up[1] + pad[2] + pad[3] - fh + down[1]) // down[1]
    if out_w < 1 or out_h < 1:
        raise ValueError(
            f"upfirdn2d: output would be empty ({out_h}x{out_w}) for input {list(x.shape)}, filter "
            f"{fh}x{fw}, up={up}, down={down}, padding={pad}; pad more or use a smaller filter"
        )
