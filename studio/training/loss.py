"""GAN objectives: StyleGAN2's non-saturating logistic loss with style mixing, lazy R1 and path-length
regularization, and Projected GAN's hinge loss; both with optional augmentation of every image D sees.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (2020), sections 2.2 and 3.2.
Regularizers run every `*_interval` steps with their loss multiplied by the interval ("lazy
regularization"), so their expected gradient per image equals that of regularizing every step.
StyleGAN3 (Karras et al. 2021) trains with the same objective, without style mixing and path length;
its config R also blurs every image D sees, with a Gaussian whose sigma fades out early in training.
Projected GAN (Sauer et al. 2021) trains with the hinge loss and no regularizer.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import ops
from studio.training.distributed import mean_over_ranks


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """images [N, C, H, W] filtered by a normalised Gaussian of standard deviation `sigma` pixels (taps
    out to 3 sigma, zero padding), same size; sigma <= 0 returns them unchanged."""
    if sigma <= 0:
        return images
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    taps = ops.setup_filter((-(offsets**2) / (2 * sigma**2)).exp(), device=images.device, separable=True)
    return ops.filter2d(images, taps)


def logistic_d(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """D's non-saturating logistic loss E[softplus(D(G(z)))] + E[softplus(-D(x))] from logits [N, L]."""
    return F.softplus(fake).mean() + F.softplus(-real).mean()


def logistic_g(fake: torch.Tensor) -> torch.Tensor:
    """G's non-saturating logistic loss E[softplus(-D(G(z)))]."""
    return F.softplus(-fake).mean()


def hinge_d(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """D's hinge loss E[relu(1 + D(G(z)))] + E[relu(1 - D(x))]."""
    return F.relu(1 + fake).mean() + F.relu(1 - real).mean()


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    """G's hinge loss -E[D(G(z))]."""
    return -fake.mean()


OBJECTIVES = {"logistic": (logistic_d, logistic_g), "hinge": (hinge_d, hinge_g)}


def r1_penalty(
    discriminator: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    real: torch.Tensor,
    c: torch.Tensor | None,
) -> torch.Tensor:
    """Squared gradient norm of D's logits w.r.t. the real images, ||grad_x D(x)||^2 per image, [N].

    The gradient keeps its graph (create_graph=True) so the penalty itself can be back-propagated.
    """
    real = real.detach().requires_grad_(True)
    logits = discriminator(real, c)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1)


def path_lengths(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """|J_w^T y| per sample, [N]: y = `noise` (same shape as img), J_w = d img / d ws.

    The Jacobian-vector product comes from grad((img * noise).sum(), ws) [N, num_ws, w_dim]; its squared
    norm over w_dim is averaged over the num_ws style inputs before the square root (one w per layer).
    """
    (jacobian,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    return jacobian.square().sum(2).mean(1).sqrt()


class StyleGAN2Loss(nn.Module):
    """Losses of one StyleGAN2 training step; holds the path-length running mean `pl_mean` (a buffer,
    so it is saved and restored with the module's state_dict) and the augmentation (ADA's p too).

    gamma: R1 weight (penalty = gamma / 2 * E||grad D(x)||^2). r1_interval / pl_interval: lazy
    regularization intervals in steps (1 = every step). pl_weight: path-length weight (0 disables it).
    pl_decay: EMA rate of pl_mean. pl_batch_shrink: the path-length batch is batch // shrink.
    style_mixing: probability that a batch mixes two latents at a random layer index.
    blur_init_sigma: standard deviation in pixels of the Gaussian blur of D's inputs (real and fake) at
    the start (StyleGAN3-R: 8.49, NVlabs' sigma 10 of exp2(-(x/sigma)^2); 0 disables it); it falls
    linearly to 0 over the first blur_fade_kimg thousand images.
    objective: "logistic" (StyleGAN's non-saturating loss) or "hinge" (Projected GAN's, trained without
    R1, path length or style mixing: its discriminator sees features of a frozen network).
    augment: applied to every image D sees, real and fake, after the blur (models.augment: DiffAugment
    or AdaptiveAugment, whose p follows the sign of D on reals; None: no augmentation).
    """

    def __init__(
        self,
        gamma: float,
        r1_interval: int = 16,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_decay: float = 0.01,
        pl_batch_shrink: int = 2,
        style_mixing: float = 0.9,
        blur_init_sigma: float = 0.0,
        blur_fade_kimg: float = 200.0,
        objective: str = "logistic",
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"loss.objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        for name, interval in (("r1_interval", r1_interval), ("pl_interval", pl_interval)):
            if int(interval) != interval or interval < 1:
                raise ValueError(f"loss.{name} must be an integer >= 1 (1 = every step), got {interval}")
        if pl_batch_shrink < 1:
            raise ValueError(f"loss.pl_batch_shrink must be >= 1, got {pl_batch_shrink}")
        if not 0 <= style_mixing <= 1:
            raise ValueError(f"loss.style_mixing is a probability in [0, 1], got {style_mixing}")
        for name, weight in (("gamma", gamma), ("pl_weight", pl_weight)):
            if not weight >= 0:
                raise ValueError(f"loss.{name} is a regularization weight >= 0, got {weight}")
        if not 0 <= pl_decay <= 1:
            raise ValueError(f"loss.pl_decay is an averaging rate in [0, 1], got {pl_decay}")
        if not blur_init_sigma >= 0 or not blur_fade_kimg > 0:
            raise ValueError(
                "loss.blur_init_sigma must be >= 0 pixels and loss.blur_fade_kimg > 0, got "
                f"{blur_init_sigma} and {blur_fade_kimg}"
            )
        self.gamma = float(gamma)
        self.r1_interval = int(r1_interval)
        self.pl_weight = float(pl_weight)
        self.pl_interval = int(pl_interval)
        self.pl_decay = float(pl_decay)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.style_mixing = float(style_mixing)
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        self.blur_sigma = self.blur_init_sigma
        self.objective = objective
        self.d_objective, self.g_objective = OBJECTIVES[objective]
        self.augment = augment
        self.register_buffer("pl_mean", torch.zeros([]))

    @property
    def adaptive(self) -> bool:
        """Whether the augmentation strength adapts to D's outputs (ADA)."""
        return bool(getattr(self.augment, "adaptive", False))

    def adapt_augment(self, num_steps: int, batch_size: int) -> None:
        """After step `num_steps` (counted from 0) of `batch_size` global images: ADA adjusts p every
        `augment.interval` steps from the signs of D on reals gathered since its last adjustment."""
        if self.adaptive and (num_steps + 1) % self.augment.interval == 0:
            self.augment.adjust(batch_size)

    def set_progress(self, cur_nimg: int) -> None:
        """Follow the training progress (images shown so far): sets the current D-input blur sigma."""
        fade = max(1.0 - cur_nimg / (self.blur_fade_kimg * 1000), 0.0)
        self.blur_sigma = self.blur_init_sigma * fade

    def discriminate(
        self, discriminator: nn.Module, images: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        """D's logits [N, L] of `images`, blurred first while blur_sigma > 0, then augmented."""
        images = gaussian_blur(images, self.blur_sigma)
        if self.augment is not None:
            images = self.augment(images)
        return discriminator(images, c)

    def mapping(
        self, generator: nn.Module, z: torch.Tensor, c: torch.Tensor | None, update_emas: bool = False
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim]; with probability `style_mixing` the layers from a random crossover index
        on take the ws of a second latent (one index for the whole batch; nothing to mix with one w)."""
        ws = generator.mapping(z, c, update_emas=update_emas)
        if self.style_mixing > 0 and ws.shape[1] > 1 and torch.rand([]).item() < self.style_mixing:
            crossover = int(torch.randint(1, ws.shape[1], []).item())
            mixed = generator.mapping(torch.randn_like(z), c, update_emas=False)
            ws = torch.cat([ws[:, :crossover], mixed[:, crossover:]], dim=1)
        return ws

    def generate(
        self, generator: nn.Module, z: torch.Tensor, c: torch.Tensor | None, update_emas: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(img [N, C, R, R], ws [N, num_ws, w_dim]) with style mixing."""
        ws = self.mapping(generator, z, c, update_emas=update_emas)
        return generator.synthesis(ws, update_emas=update_emas), ws

    def generator_loss(
        self, generator: nn.Module, discriminator: nn.Module, z: torch.Tensor, c: torch.Tensor | None
    ) -> torch.Tensor:
        """G's loss on D's logits of G(z) (`g_objective`), scalar."""
        img, _ = self.generate(generator, z, c)
        return self.g_objective(self.discriminate(discriminator, img, c))

    def path_length_loss(self, generator: nn.Module, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """pl_weight * pl_interval * E[(|J^T y| - pl_mean)^2], scalar; updates pl_mean (EMA, rate pl_decay).

        Under torch.distributed the EMA uses the mean length over all ranks, so pl_mean stays identical.

        y ~ N(0, I) / sqrt(H * W) so the lengths do not depend on the image resolution.
        """
        batch = max(z.shape[0] // self.pl_batch_shrink, 1)
        z, c = z[:batch], None if c is None else c[:batch]
        img, ws = self.generate(generator, z, c)
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        lengths = path_lengths(img, ws, noise)
        self.pl_mean.copy_(
            self.pl_mean.lerp(mean_over_ranks(lengths.mean().detach()).to(self.pl_mean.dtype), self.pl_decay)
        )
        penalty = (lengths - self.pl_mean).square().mean()
        return penalty * self.pl_weight * self.pl_interval

    def discriminator_loss(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        z: torch.Tensor,
        c: torch.Tensor | None,
        real: torch.Tensor,
        real_c: torch.Tensor | None,
    ) -> torch.Tensor:
        """D's loss on its logits of G(z) and of the reals (`d_objective`), scalar. G runs without
        gradients; its mapping network updates its running w average here. ADA gathers the signs of
        the real logits."""
        with torch.no_grad():
            fake, _ = self.generate(generator, z, c, update_emas=True)
        fake_logits = self.discriminate(discriminator, fake, c)
        real_logits = self.discriminate(discriminator, real, real_c)
        if self.adaptive:
            self.augment.accumulate(real_logits.detach())
        return self.d_objective(fake_logits, real_logits)

    def r1_loss(self, discriminator: nn.Module, real: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """gamma / 2 * E||grad_x D(blur(x))||^2 * r1_interval, scalar (gradient w.r.t. the unblurred x)."""
        penalty = r1_penalty(lambda x, c: self.discriminate(discriminator, x, c), real, c)
        return penalty.mean() * (self.gamma / 2) * self.r1_interval
