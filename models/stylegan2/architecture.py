"""Per-resolution architecture rules shared by the StyleGAN2 generator and discriminator."""

import math

import torch


def resolve_conv_clamp(conv_clamp: float | str | None, num_fp16_res: int) -> float | None:
    """conv_clamp "auto" means 256 when some layers run in fp16, otherwise no clamping."""
    if conv_clamp == "auto":
        return 256.0 if num_fp16_res > 0 else None
    if conv_clamp is None or isinstance(conv_clamp, (int, float)):
        return conv_clamp
    raise ValueError(f"conv_clamp must be a number, None or 'auto', got {conv_clamp!r}")


def block_resolutions(img_resolution: int) -> list[int]:
    """[4, 8, ..., img_resolution]; img_resolution must be a power of two >= 4."""
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
    return [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]


def fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """Lowest resolution computed in fp16: the top `num_fp16_res` resolutions, never below 8."""
    return max(2 ** (int(math.log2(img_resolution)) + 1 - num_fp16_res), 8)


def uses_fp16(res: int, img_resolution: int, num_fp16_res: int) -> bool:
    """Whether the block at resolution `res` is one of the top `num_fp16_res` (fp16) resolutions."""
    return res >= fp16_resolution(img_resolution, num_fp16_res)


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    """Feature channels at resolution `res`: min(channel_base // res, channel_max)."""
    return min(channel_base // res, channel_max)


def compute_dtype(use_fp16: bool, device: torch.device, param_dtype: torch.dtype) -> torch.dtype:
    """fp16 for an fp16 block on CUDA; elsewhere the parameters' dtype (fp16 convs are slow on CPU)."""
    return torch.float16 if use_fp16 and device.type == "cuda" else param_dtype
