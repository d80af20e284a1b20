"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"),
written from the paper (section 3 and its appendix): three differentiable transforms applied to every
image shown to the discriminator, real and fake, with per-sample random parameters.

* color: brightness (add b ~ U(-0.5, 0.5)), then saturation (scale each pixel's deviation from its
  channel mean by s ~ U(0, 2)), then contrast (scale the deviation from the image mean by
  c ~ U(0.5, 1.5));
* translation: shift by integers (tx, ty), each ~ U{-m, ..., m} with m = round(size / 8), zero padding;
* cutout: zero a square of round(size / 2) pixels whose centre is a uniform pixel of the image (it is
  clipped where it crosses the border).

Images are [N, C, H, W] in [-1, 1], so zero (the padding and cutout value) is mid-grey.
"""

import torch
from torch import Tensor

from models.augment.base import Augment
from models.augment.sampling import gather_pixels

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 1 / 8  # maximum shift, fraction of the image size
CUTOUT_RATIO = 1 / 2  # square side, fraction of the image size


def _round_half_up(x: float) -> int:
    return int(x + 0.5)


def adjust_color(images: Tensor, brightness: Tensor, saturation: Tensor, contrast: Tensor) -> Tensor:
    """Brightness, saturation then contrast of images [N, C, H, W], per-sample factors [N] (unitless).

    brightness is added; saturation scales the deviation from the per-pixel channel mean; contrast
    scales the deviation from the per-image mean (over C, H, W).
    """
    n = images.shape[0]
    b, s, c = (t.to(images.dtype).view(n, 1, 1, 1) for t in (brightness, saturation, contrast))
    x = images + b
    pixel_mean = x.mean(dim=1, keepdim=True)
    x = (x - pixel_mean) * s + pixel_mean
    image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - image_mean) * c + image_mean


def translate(images: Tensor, shift_x: Tensor, shift_y: Tensor) -> Tensor:
    """images [N, C, H, W] shifted right by shift_x and down by shift_y pixels (int [N]), zero padded.

    out[n, :, i, j] = images[n, :, i - shift_y[n], j - shift_x[n]], or 0 outside the image.
    """
    n, c, h, w = images.shape
    rows = torch.arange(h, device=images.device).view(1, h, 1) - shift_y.view(n, 1, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w) - shift_x.view(n, 1, 1)
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)
    moved = gather_pixels(images, rows.clamp(0, h - 1), cols.clamp(0, w - 1))
    return moved * inside.to(images.dtype)  # zero padding


def cutout(images: Tensor, centre_x: Tensor, centre_y: Tensor, size_x: int, size_y: int) -> Tensor:
    """images [N, C, H, W] with a size_y x size_x rectangle zeroed per sample.

    The rectangle covers rows centre_y - size_y // 2 .. + size_y - 1 and the same for columns (int [N]
    centres), clipped to the image.
    """
    n, _, h, w = images.shape
    rows = torch.arange(h, device=images.device).view(1, h, 1) - (centre_y.view(n, 1, 1) - size_y // 2)
    cols = torch.arange(w, device=images.device).view(1, 1, w) - (centre_x.view(n, 1, 1) - size_x // 2)
    hole = (rows >= 0) & (rows < size_y) & (cols >= 0) & (cols < size_x)
    return images * (~hole).unsqueeze(1).to(images.dtype)


class DiffAugment(Augment):
    """DiffAugment with a comma-separated `policy` of "color", "translation", "cutout" (applied in that
    order of the string); "" is the identity.

    forward: images [N, C, H, W] in [-1, 1] -> augmented [N, C, H, W], same dtype; differentiable.
    """

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        super().__init__()
        names = [name.strip() for name in policy.split(",") if name.strip()]
        for name in names:
            if name not in POLICIES:
                raise ValueError(f"unknown DiffAugment policy {name!r}; choose from {', '.join(POLICIES)}")
        self.policy = policy
        self.names = tuple(names)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"

    def forward(self, images: Tensor) -> Tensor:
        x = images
        for name in self.names:
            x = getattr(self, f"_{name}")(x)
        return x

    def _color(self, x: Tensor) -> Tensor:
        n, device = x.shape[0], x.device
        brightness = torch.rand(n, device=device) - 0.5
        saturation = torch.rand(n, device=device) * 2
        contrast = torch.rand(n, device=device) + 0.5
        return adjust_color(x, brightness, saturation, contrast)

    def _translation(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        max_x, max_y = _round_half_up(w * TRANSLATION_RATIO), _round_half_up(h * TRANSLATION_RATIO)
        shift_x = torch.randint(-max_x, max_x + 1, (n,), device=x.device)
        shift_y = torch.randint(-max_y, max_y + 1, (n,), device=x.device)
        return translate(x, shift_x, shift_y)

    def _cutout(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        size_x, size_y = _round_half_up(w * CUTOUT_RATIO), _round_half_up(h * CUTOUT_RATIO)
        centre_x = torch.randint(0, w, (n,), device=x.device)
        centre_y = torch.randint(0, h, (n,), device=x.device)
        return cutout(x, centre_x, centre_y, size_x, size_y)
