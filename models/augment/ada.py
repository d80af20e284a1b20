"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data"), written from the paper.

Pipeline (appendix B): pixel blitting (b), general geometric transforms (g) and colour transforms (c),
each transform applied to each sample with probability p; distributions in `geometry` and `color`.
The geometric transforms of a sample compose into one affine matrix, applied once:

* a sample that only pixel blitting touched (x-flip, 90-degree rotation, integer translation) is copied
  pixel for pixel (exact, lossless; mirrored at the borders);
* a sample a general transform touched is resampled once, band-limited (2x windowed-sinc upsampling,
  bilinear interpolation, low-pass and 2x decimation, reflect padding; `sampling`).

Its colour transforms compose into one 4x4 matrix, applied in one matmul. A sample no transform touched
is returned as it is (bitwise), so p = 0 is the identity.

Adaptation (section 3): r_t = E[sign(D(real))] over the real logits since the last adjustment;
every `interval` steps p += sign(r_t - target) * batch_size * interval / (speed_kimg * 1000), clamped to
[0, 1] (published: target 0.6, interval 4, speed_kimg 500, so p can go from 0 to 1 in 500k images).
The sums live in buffers, summed over ranks as they are gathered, so a checkpoint resumes exactly.

Double backward: every op on the images is double-differentiable on all supported torch versions
(`sampling` avoids `F.grid_sample`), so R1 (the gradient of D(augment(x)) w.r.t. x with
create_graph=True, then backward) works through the pipeline.
"""

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor

from models.augment.base import Augment
from models.augment.color import COLOR, apply_color, random_color
from models.augment.geometry import BLIT, GENERAL, random_geometry
from models.augment.sampling import blit, resample

GROUPS = {"b": BLIT, "g": GENERAL, "c": COLOR}
TRANSFORMS = BLIT + GENERAL + COLOR


def parse_policy(policy: str) -> frozenset[str]:
    """The transforms a policy enables.

    A policy is either letters of "bgc" (b = pixel blitting, g = general geometric, c = colour; e.g.
    "bgc", "bg") or a comma-separated list of transform names (e.g. "xflip,rotate90"); "" enables none.
    """
    policy = policy.strip()
    if not policy:
        return frozenset()
    if "," not in policy and policy not in TRANSFORMS and set(policy) <= set(GROUPS):
        return frozenset(name for letter in policy for name in GROUPS[letter])
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in TRANSFORMS]
    if unknown:
        raise ValueError(
            f"unknown ADA policy {policy!r}: use letters of 'bgc' (b = pixel blitting, g = general "
            f"geometric, c = colour) or a comma-separated list of {', '.join(TRANSFORMS)}"
        )
    return frozenset(names)


def _sum_over_ranks(values: Tensor) -> Tensor:
    """values summed over all ranks in place when torch.distributed is initialised (else unchanged)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


class AdaptiveAugment(Augment):
    """ADA: the 'bgc' augmentation pipeline with a probability p that follows discriminator overfitting.

    Args:
        p: initial augmentation probability in [0, 1].
        target: target of r_t = E[sign(D(real))]; None keeps p fixed (accumulate/adjust do nothing).
        interval: steps between two `adjust` calls (enters the step size of p).
        speed_kimg: thousands of images for p to go from 0 to 1 at one sign.
        policy: enabled transforms, see `parse_policy` ("bgc" = all of blit, geometric and colour).

    State (buffers, in the state_dict): `p` (float64 scalar), `sign_sum` and `count` (float64 scalars:
    the sum of sign(D(real)) and the number of logits since the last adjustment, over all ranks, so every
    rank holds the same state and a checkpoint resumes exactly on any number of processes).
    """

    adaptive = True

    def __init__(
        self,
        p: float = 0.0,
        target: float | None = 0.6,
        interval: int = 4,
        speed_kimg: float = 500.0,
        policy: str = "bgc",
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if target is not None and not 0.0 <= target <= 1.0:
            raise ValueError(f"target must be in [0, 1] or None, got {target}")
        if interval < 1:
            raise ValueError(f"interval must be a positive number of steps, got {interval}")
        if not speed_kimg > 0:
            raise ValueError(f"speed_kimg must be positive, got {speed_kimg}")
        self.target = target
        self.interval = interval
        self.speed_kimg = speed_kimg
        self.policy = policy
        self.enabled = parse_policy(policy)
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float64))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> "AdaptiveAugment":
        # Keep the adaptation state in float64 whatever the module is cast to (.half(), a "bf16-true"
        # trainer): p moves by ~1e-5 per adjustment, far below half precision's resolution near 0.5.
        super()._apply(fn, recurse)
        for name in ("p", "sign_sum", "count"):
            setattr(self, name, getattr(self, name).to(torch.float64))
        return self

    def extra_repr(self) -> str:
        return (
            f"policy={self.policy!r}, target={self.target}, interval={self.interval}, "
            f"speed_kimg={self.speed_kimg}"
        )

    def forward(self, images: Tensor) -> Tensor:
        """Augmented images [N, C, H, W] (same dtype) of images [N, C, H, W] in [-1, 1]."""
        n, c, h, w = images.shape
        # Matrices in float32 (float64 for float64 images, e.g. gradcheck), whatever the image precision.
        dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
        geometric = self.enabled & set(BLIT + GENERAL)
        colors = self.enabled & set(COLOR)
        x = images
        if geometric:
            matrix, general = random_geometry(n, self.p, geometric, h, w, dtype, images.device)
            if geometric & set(BLIT):
                x = blit(images, matrix)  # exact for the samples no general transform touched
            # One host sync: skip the resampling when no sample needs it (e.g. p = 0, or small p).
            if geometric & set(GENERAL) and bool(general.any()):
                x = torch.where(general.view(n, 1, 1, 1), resample(images, matrix), x)
        if colors:
            matrix, active = random_color(n, self.p, colors, dtype, images.device)
            # where() keeps the untouched samples bitwise (a matmul by I may round, e.g. under TF32).
            x = torch.where(active.view(n, 1, 1, 1), apply_color(x, matrix), x)
        return x

    @torch.no_grad()
    def accumulate(self, real_logits: Tensor) -> None:
        """Add the signs of D's outputs on real images, real_logits [N, ...], to the sums: one sign per
        image, of its mean logit (a discriminator with several logits per image, such as a Projected GAN's,
        counts each image once, as the paper's r_t does). Summed over ranks; no host sync."""
        if self.target is None:
            return
        per_image = real_logits.detach().reshape(len(real_logits), -1).mean(1)
        sums = torch.stack(
            [torch.sign(per_image).sum().to(self.sign_sum), self.count.new_tensor(per_image.numel())]
        )
        sums = _sum_over_ranks(sums)
        self.sign_sum += sums[0]
        self.count += sums[1]

    @torch.no_grad()
    def adjust(self, batch_size: int) -> None:
        """Update p from the accumulated signs and reset them; call every `interval` steps on every rank.

        batch_size: images per step over all ranks (the global batch). No host sync; nothing changes when
        no logits were accumulated.
        """
        if self.target is None:
            return
        seen = self.count > 0
        rt = self.sign_sum / self.count.clamp(min=1)
        step = torch.sign(rt - self.target) * (batch_size * self.interval) / (self.speed_kimg * 1000)
        self.p.copy_(torch.where(seen, (self.p + step).clamp(0.0, 1.0), self.p))
        self.sign_sum.zero_()
        self.count.zero_()
