"""Image resizing and quantisation that reproduce the FID reference protocol exactly."""

from __future__ import annotations

import torch


def _source_coordinates(in_size: int, out_size: int) -> tuple[torch.Tensor, ...]:
    """TF1 `resize_bilinear(align_corners=False)` sampling grid along one axis, on the CPU.

    TF1 maps output pixel i to source position i * in/out (no half-pixel offset, unlike PyTorch's
    align_corners=False), so the last rows/columns are clamped rather than interpolated symmetrically.
    Returns (low index, high index, fractional weight of the high index), each of length out_size.
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    position = torch.arange(out_size, dtype=torch.float32) * scale
    low = position.long()
    high = (low + 1).clamp_max(in_size - 1)
    frac = position - low.float()
    return low, high, frac


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize as TensorFlow 1.x `tf.image.resize_bilinear` (align_corners=False, no antialias).

    images: float tensor [N, C, H, W]; size: (out_H, out_W). Returns [N, C, out_H, out_W] in the same dtype.
    This is the resize the standard FID Inception graph applies to its input.
    """
    if images.dim() != 4 or not torch.is_floating_point(images):
        raise ValueError(
            f"expected a floating-point [N, C, H, W] tensor, got {images.dtype} {tuple(images.shape)}"
        )
    out_h, out_w = size
    y_low, y_high, y_frac = _source_coordinates(images.shape[2], out_h)
    x_low, x_high, x_frac = _source_coordinates(images.shape[3], out_w)
    # Each source row that the output uses is interpolated along x once (at most min(H, 2 out_H) rows),
    # then picked for the top and bottom of every output row: the same float operations on the same
    # values as interpolating every picked row, at a fraction of the work when upscaling. The indices
    # are worked out on the CPU (a unique() on a GPU would wait for the batch), then moved together.
    used = torch.unique(torch.cat([y_low, y_high]))
    top_rows, bottom_rows = torch.searchsorted(used, y_low), torch.searchsorted(used, y_high)
    used, x_low, x_high, top_rows, bottom_rows = (
        index.to(images.device) for index in (used, x_low, x_high, top_rows, bottom_rows)
    )
    x_frac, y_frac = (frac.to(images.device, images.dtype) for frac in (x_frac, y_frac))
    source = images.index_select(2, used)
    left, right = source.index_select(3, x_low), source.index_select(3, x_high)
    rows = left + (right - left) * x_frac.view(1, 1, 1, out_w)
    top, bottom = rows.index_select(2, top_rows), rows.index_select(2, bottom_rows)
    return top + (bottom - top) * y_frac.view(1, 1, out_h, 1)


def quantize_to_uint8(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Map generator output [N, C, H, W] in `value_range` to uint8 [0, 255] the way reference tools do.

    Real images are stored as 8-bit files, so generated images are rounded to 8 bits before feature
    extraction: x -> floor(x * s + 0.5 - lo * s) with s = 255 / (hi - lo), clamped to [0, 255]. For
    [-1, 1] this is NVlabs' x * 127.5 + 128 with the same float operations, so it agrees bit for bit at
    exact half-steps too; studio-generate and the sample grids use it, so PNGs and metrics see the same
    pixels.
    """
    lo, hi = value_range
    scale = 255.0 / (hi - lo)
    return (images.float() * scale + (0.5 - lo * scale)).clamp(0, 255).to(torch.uint8)
