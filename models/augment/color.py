"""Random colour transforms of ADA (Karras et al. 2020, appendix B), as one 4x4 matrix per sample.

A matrix [N, 4, 4] acts on homogeneous RGB (r, g, b, 1) of images in [-1, 1] (0 = mid-grey), so
brightness is a translation and contrast a scaling about mid-grey. The luma axis is
v = (1, 1, 1, 0) / sqrt(3). Each transform is applied to a sample with probability p (identity
otherwise) and they compose as

    C = saturation @ hue @ lumaflip @ contrast @ brightness   (brightness acts first)

Distributions (paper, appendix B):

==========  =====================================  ==========================================
transform   parameter                              matrix
==========  =====================================  ==========================================
brightness  b ~ N(0, 0.2^2)                        translate RGB by (b, b, b)
contrast    c ~ lognormal(0, (0.5 ln 2)^2)         scale RGB by c
lumaflip    i ~ U{0, 1}                            I - 2 v v^T i (Householder reflection)
hue         theta ~ U(-180, 180) degrees           rotation by theta about v
saturation  s ~ lognormal(0, (1 ln 2)^2)           v v^T + (I - v v^T) s
==========  =====================================  ==========================================
"""

import math

import torch
from torch import Tensor

COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")

BRIGHTNESS_STD = 0.2  # additive, in [-1, 1] units
CONTRAST_STD = 0.5  # log2 std
HUE_MAX = math.pi  # radians (uniform)
SATURATION_STD = 1.0  # log2 std


def _luma_axis(dtype: torch.dtype, device: torch.device) -> Tensor:
    """v [4]: the unit grey axis (1, 1, 1, 0) / sqrt(3)."""
    v = torch.ones(4, dtype=dtype, device=device) / math.sqrt(3)
    v[3] = 0
    return v


def random_color(
    n: int, p: Tensor, enabled: frozenset[str], dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Draw one colour matrix per sample.

    n: batch size; p: augmentation probability (0-d tensor on `device`); enabled: names from COLOR.
    Returns (matrices [N, 4, 4] in `dtype`, active [N] bool: whether any colour transform hit the sample).
    The draws (float32, then cast) depend only on `enabled` and n, not on p, like `random_geometry`'s.
    """
    eye = torch.eye(4, dtype=dtype, device=device)
    v = _luma_axis(dtype, device)
    vv = torch.outer(v, v)  # projection onto the luma axis
    matrix = eye.expand(n, 4, 4)
    active = torch.zeros(n, dtype=torch.bool, device=device)

    def draw(kind: str = "rand", shape: tuple[int, ...] = (n,)) -> Tensor:
        values = torch.rand(shape, device=device) if kind == "rand" else torch.randn(shape, device=device)
        return values.to(dtype)

    def per_sample(x: Tensor) -> Tensor:
        return x.view(n, 1, 1)

    if "brightness" in enabled:
        hit = torch.rand(n, device=device) < p
        b = draw("randn") * BRIGHTNESS_STD * hit
        shift = eye.repeat(n, 1, 1)
        shift[:, :3, 3] = b.unsqueeze(1)
        matrix = shift @ matrix
        active |= hit
    if "contrast" in enabled:
        hit = torch.rand(n, device=device) < p
        c = torch.where(hit, torch.exp2(draw("randn") * CONTRAST_STD), torch.ones_like(active, dtype=dtype))
        scale = torch.diag_embed(torch.stack([c, c, c, torch.ones_like(c)], dim=1))
        matrix = scale @ matrix
        active |= hit
    if "lumaflip" in enabled:
        hit = torch.rand(n, device=device) < p
        flip = torch.randint(0, 2, (n,), device=device).to(dtype) * hit
        matrix = (eye - 2 * vv * per_sample(flip)) @ matrix
        active |= hit
    if "hue" in enabled:
        hit = torch.rand(n, device=device) < p
        theta = (draw() * 2 - 1) * HUE_MAX * hit
        matrix = _rotation_about(v, theta) @ matrix
        active |= hit
    if "saturation" in enabled:
        hit = torch.rand(n, device=device) < p
        s = torch.where(hit, torch.exp2(draw("randn") * SATURATION_STD), torch.ones_like(active, dtype=dtype))
        chroma = torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=dtype, device=device)) - vv
        matrix = (eye + chroma * per_sample(s - 1)) @ matrix  # = v v^T + chroma s on RGB
        active |= hit
    return matrix.contiguous(), active


def _rotation_about(axis: Tensor, theta: Tensor) -> Tensor:
    """Rotations [N, 4, 4] of RGB by angles theta [N] (radians) about the unit `axis` [4] (last entry 0).

    Rodrigues' formula R = cos(theta) I + sin(theta) [axis]_x + (1 - cos(theta)) axis axis^T on the RGB
    block; the homogeneous coordinate is left alone.
    """
    n = theta.shape[0]
    x, y, z = axis[0], axis[1], axis[2]
    zero = torch.zeros((), dtype=axis.dtype, device=axis.device)
    cross = torch.stack(
        [torch.stack([zero, -z, y]), torch.stack([z, zero, -x]), torch.stack([-y, x, zero])]
    )  # [axis]_x, the cross-product matrix
    outer = torch.outer(axis[:3], axis[:3])
    cos, sin = torch.cos(theta).view(n, 1, 1), torch.sin(theta).view(n, 1, 1)
    eye3 = torch.eye(3, dtype=axis.dtype, device=axis.device)
    rgb = cos * eye3 + sin * cross + (1 - cos) * outer
    out = torch.eye(4, dtype=axis.dtype, device=axis.device).repeat(n, 1, 1)
    out[:, :3, :3] = rgb
    return out


def apply_color(images: Tensor, matrix: Tensor) -> Tensor:
    """images [N, C, H, W] (C = 3 RGB, or C = 1 grey) transformed by colour matrices [N, 4, 4].

    One batched matmul. A grey image is treated as RGB (g, g, g) and the output's luma (channel mean)
    kept, i.e. g' = mean(A @ (1, 1, 1)) g + mean(t) with A, t the matrix's RGB block and translation.
    """
    n, c, h, w = images.shape
    matrix = matrix.to(images.dtype)
    linear, offset = matrix[:, :3, :3], matrix[:, :3, 3:]  # [N, 3, 3], [N, 3, 1]
    if c == 1:
        linear = linear.sum(dim=(1, 2), keepdim=True) / 3  # [N, 1, 1]
        offset = offset.mean(dim=1, keepdim=True)
    elif c != 3:
        raise ValueError(f"colour transforms need 1 or 3 channels, got {c}")
    out = torch.baddbmm(offset, linear, images.reshape(n, c, h * w))
    return out.reshape(n, c, h, w)
