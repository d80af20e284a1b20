"""Random geometric transforms of ADA (Karras et al. 2020, appendix B), as one affine matrix per sample.

Matrices are [N, 3, 3] in centred pixel coordinates (x = column, y = row, origin at the image centre)
and map input positions to output positions: the content moves by them. Each transform is applied to a
sample with its own probability; a sample it skips gets the identity, so all compose into one matrix:

    M = xfrac @ rotate_post @ aniso @ rotate_pre @ scale @ xint @ rotate90 @ xflip   (xflip acts first)

Distributions (paper, appendix B, Figure 24's pipeline; size = image width for x, height for y):

=========  ===========================================================  =================
transform  parameter                                                    probability
=========  ===========================================================  =================
xflip      i ~ U{0, 1}; scale x by 1 - 2i                               p
rotate90   i ~ U{0, 1, 2, 3}; rotate by i * 90 degrees                  p
xint       t ~ U(-0.125, 0.125)^2; translate by round(t * size) pixels  p
scale      s ~ lognormal(0, (0.2 ln 2)^2); scale by s (isotropic)       p
rotate     theta ~ U(-180, 180) degrees, drawn twice (pre and post)     1 - sqrt(1 - p) each
aniso      s ~ lognormal(0, (0.2 ln 2)^2); scale x by s, y by 1 / s     p
xfrac      t ~ N(0, 0.125^2)^2; translate by t * size pixels            p
=========  ===========================================================  =================

The two rotations have probability 1 - sqrt(1 - p) each so that "some rotation" has probability p.
The directions (clockwise or not) do not matter: every distribution is symmetric.
"""

import math

import torch
from torch import Tensor

BLIT = ("xflip", "rotate90", "xint")
GENERAL = ("scale", "rotate", "aniso", "xfrac")

XINT_MAX = 0.125  # integer translation, fraction of the image size (uniform)
SCALE_STD = 0.2  # isotropic scaling, log2 std
ROTATE_MAX = math.pi  # arbitrary rotation, radians (uniform)
ANISO_STD = 0.2  # anisotropic scaling, log2 std
XFRAC_STD = 0.125  # fractional translation, fraction of the image size (normal)


def affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """Matrices [N, 3, 3] [[a, b, tx], [c, d, ty], [0, 0, 1]] from per-sample entries [N]."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = [torch.stack([a, b, tx], 1), torch.stack([c, d, ty], 1), torch.stack([zero, zero, one], 1)]
    return torch.stack(rows, 1)


def translation(tx: Tensor, ty: Tensor) -> Tensor:
    """Translations [N, 3, 3] by (tx, ty) pixels."""
    one, zero = torch.ones_like(tx), torch.zeros_like(tx)
    return affine(one, zero, zero, one, tx, ty)


def scaling(sx: Tensor, sy: Tensor) -> Tensor:
    """Scalings [N, 3, 3] of x by sx and y by sy about the centre."""
    zero = torch.zeros_like(sx)
    return affine(sx, zero, zero, sy, zero, zero)


def rotation(cos: Tensor, sin: Tensor) -> Tensor:
    """Rotations [N, 3, 3] about the centre, given the angles' cosines and sines."""
    zero = torch.zeros_like(cos)
    return affine(cos, -sin, sin, cos, zero, zero)


def _fires(n: int, probability: Tensor, device: torch.device) -> Tensor:
    """[N] bool: which samples a transform of this probability hits (one uniform draw each)."""
    return torch.rand(n, device=device) < probability


def random_geometry(
    n: int,
    p: Tensor,
    enabled: frozenset[str],
    height: int,
    width: int,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """Draw one geometric matrix per sample.

    n: batch size; p: augmentation probability (0-d tensor on `device`); enabled: names from BLIT and
    GENERAL; height, width: image size in pixels (translations scale with it).
    Returns (matrices [N, 3, 3] in `dtype`, general [N] bool: whether a transform of GENERAL hit the
    sample, i.e. whether it needs resampling rather than an exact pixel blit).

    The draws (float32, then cast to `dtype`) depend only on `enabled` and n, never on p or `dtype`, so
    the RNG stream advances the same way whatever p is (a resumed run stays in step).
    """
    eye = torch.eye(3, dtype=dtype, device=device).expand(n, 3, 3)
    matrix = eye
    general = torch.zeros(n, dtype=torch.bool, device=device)
    zero = torch.zeros(n, dtype=dtype, device=device)
    size_x, size_y = float(width), float(height)

    def compose(transform: Tensor) -> None:
        nonlocal matrix
        matrix = transform @ matrix  # the new transform acts after the previous ones

    if "xflip" in enabled:
        hit = _fires(n, p, device)
        flip = torch.randint(0, 2, (n,), device=device) * hit
        compose(scaling((1 - 2 * flip).to(dtype), torch.ones_like(zero)))
    if "rotate90" in enabled:
        hit = _fires(n, p, device)
        quarter = torch.randint(0, 4, (n,), device=device) * hit
        # Exact cosines and sines of multiples of 90 degrees (math.cos(pi / 2) is not 0).
        cos = (quarter == 0).to(dtype) - (quarter == 2).to(dtype)
        sin = (quarter == 1).to(dtype) - (quarter == 3).to(dtype)
        compose(rotation(cos, sin))
    if "xint" in enabled:
        hit = _fires(n, p, device)
        t = (torch.rand(2, n, device=device).to(dtype) * 2 - 1) * XINT_MAX
        compose(translation(torch.round(t[0] * size_x) * hit, torch.round(t[1] * size_y) * hit))
    p_rotate = 1 - torch.sqrt(1 - p)
    if "scale" in enabled:
        hit = _fires(n, p, device)
        s = _random_log2_scale(n, hit, SCALE_STD, dtype, device)
        compose(scaling(s, s))
        general |= hit
    if "rotate" in enabled:  # pre-rotation
        hit = _fires(n, p_rotate, device)
        compose(_random_rotation(n, hit, dtype, device))
        general |= hit
    if "aniso" in enabled:
        hit = _fires(n, p, device)
        s = _random_log2_scale(n, hit, ANISO_STD, dtype, device)
        compose(scaling(s, 1 / s))
        general |= hit
    if "rotate" in enabled:  # post-rotation
        hit = _fires(n, p_rotate, device)
        compose(_random_rotation(n, hit, dtype, device))
        general |= hit
    if "xfrac" in enabled:
        hit = _fires(n, p, device)
        t = torch.randn(2, n, device=device).to(dtype) * XFRAC_STD * hit
        compose(translation(t[0] * size_x, t[1] * size_y))
        general |= hit
    return matrix.contiguous(), general


def _random_log2_scale(n: int, hit: Tensor, std: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Factors [N], 2 ** N(0, std²) where `hit` [N], else 1."""
    return torch.where(
        hit,
        torch.exp2(torch.randn(n, device=device).to(dtype) * std),
        torch.ones((), dtype=dtype, device=device),
    )


def _random_rotation(n: int, hit: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Rotations [N, 3, 3] by U(-ROTATE_MAX, ROTATE_MAX) radians where `hit` [N], else the identity."""
    theta = (torch.rand(n, device=device).to(dtype) * 2 - 1) * ROTATE_MAX * hit
    return rotation(torch.cos(theta), torch.sin(theta))
