"""Custom ops for StyleGAN-family networks: each with a plain-PyTorch reference path and an optional
compiled CUDA kernel, chosen by `impl="auto" | "cuda" | "ref"` (see ops/_dispatch.py)."""

from ops.bias_act import ACTIVATIONS, bias_act, bias_act_ref
from ops.filtered_lrelu import filtered_lrelu, filtered_lrelu_ref
from ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upfirdn2d_ref, upsample2d

__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "bias_act_ref",
    "downsample2d",
    "filter2d",
    "filtered_lrelu",
    "filtered_lrelu_ref",
    "setup_filter",
    "upfirdn2d",
    "upfirdn2d_ref",
    "upsample2d",
]
