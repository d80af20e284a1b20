"""Loss terms against hand-computed cases with analytic gradients: StyleGAN2's regularizers, the hinge
and logistic objectives, augmentation of D's inputs and ADA's hooks."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from studio.training.loss import StyleGAN2Loss, hinge_d, hinge_g, path_lengths, r1_penalty


class QuadraticD(nn.Module):
    """D(x) = w * sum(x^2): grad_x D = 2 w x, so ||grad||^2 = 4 w^2 ||x||^2."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.w * img.square().flatten(1).sum(1, keepdim=True)


class LinearG(nn.Module):
    """mapping: ws[n, i] = s * z[n] (s = 1, a parameter, for every i < num_ws);
    synthesis: img[n] = A @ ws[n].flatten() as [1, H, W]."""

    def __init__(self, z_dim: int = 3, num_ws: int = 2, hw: int = 4) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.num_ws, self.hw = z_dim, 0, num_ws, hw
        self.A = nn.Parameter(torch.randn(hw * hw, num_ws * z_dim, dtype=torch.float64))
        self.s = nn.Parameter(torch.ones([], dtype=torch.float64))
        self.mapping = lambda z, c, update_emas=False: (self.s * z).unsqueeze(1).repeat(1, num_ws, 1)
        self.synthesis = lambda ws, update_emas=False: (ws.flatten(1) @ self.A.T).view(-1, 1, hw, hw)


def test_r1_penalty_matches_analytic_gradient_norm_and_its_gradient() -> None:
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    D = QuadraticD(0.7)
    penalty = r1_penalty(D, x, None)
    expected = 4 * 0.7**2 * x.square().flatten(1).sum(1)
    torch.testing.assert_close(penalty, expected, rtol=1e-12, atol=0)
    # d/dw of mean(4 w^2 ||x||^2) = 8 w mean ||x||^2: the penalty is differentiable (create_graph).
    penalty.mean().backward()
    torch.testing.assert_close(D.w.grad, 8 * 0.7 * x.square().flatten(1).sum(1).mean(), rtol=1e-12, atol=0)


def test_r1_loss_is_half_gamma_times_interval() -> None:
    x = torch.randn(4, 1, 2, 2, dtype=torch.float64)
    loss = StyleGAN2Loss(gamma=0.3, r1_interval=16)
    value = loss.r1_loss(QuadraticD(1.5), x, None)
    expected = 0.3 / 2 * 16 * (4 * 1.5**2 * x.square().flatten(1).sum(1)).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-12)


def test_path_lengths_of_a_linear_generator() -> None:
    torch.manual_seed(0)
    G = LinearG()
    z = torch.randn(6, 3, dtype=torch.float64)
    ws = G.mapping(z, None).detach().requires_grad_(True)
    img = G.synthesis(ws)
    y = torch.randn_like(img)
    lengths = path_lengths(img, ws, y)
    # J^T y per sample = A^T y.flatten(), viewed as [num_ws, w_dim]; mean over ws of the squared norms.
    jty = (y.flatten(1).numpy() @ G.A.detach().numpy()).reshape(6, 2, 3)
    expected = np.sqrt((jty**2).sum(2).mean(1))
    np.testing.assert_allclose(lengths.detach().numpy(), expected, rtol=1e-12)


def test_path_length_loss_updates_pl_mean_and_weights_the_penalty() -> None:
    torch.manual_seed(0)
    G = LinearG()
    loss = StyleGAN2Loss(
        gamma=1, pl_weight=2.0, pl_interval=4, pl_decay=0.01, pl_batch_shrink=2, style_mixing=0
    )
    z = torch.randn(8, 3, dtype=torch.float64)
    loss.pl_mean.fill_(0.5)
    torch.manual_seed(1)
    value = loss.path_length_loss(G, z, None)
    torch.manual_seed(1)
    ws = G.mapping(z[:4], None).detach().requires_grad_(True)
    img = G.synthesis(ws)
    noise = torch.randn_like(img) / math.sqrt(4 * 4)
    lengths = path_lengths(img, ws, noise).detach()
    pl_mean = 0.5 + 0.01 * (lengths.mean() - 0.5)
    assert loss.pl_mean.item() == pytest.approx(pl_mean.item(), rel=1e-6)
    expected = ((lengths - pl_mean) ** 2).mean() * 2.0 * 4
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


def test_style_mixing_splices_two_latents_at_one_crossover() -> None:
    torch.manual_seed(0)
    G = LinearG(z_dim=3, num_ws=5)
    loss = StyleGAN2Loss(gamma=1, style_mixing=1.0)
    z = torch.randn(4, 3, dtype=torch.float64)
    ws = loss.mapping(G, z, None)
    first = (ws == z.unsqueeze(1)).all(2).all(0)  # [num_ws]: layer i still holds z's w
    crossover = int(first.sum())
    assert 1 <= crossover < 5
    assert first[:crossover].all() and not first[crossover:].any()
    assert (
        ws[:, crossover:] == ws[:, crossover : crossover + 1]
    ).all()  # one second latent for all later layers


def test_adversarial_losses_are_non_saturating_logistic() -> None:
    torch.manual_seed(0)
    G = LinearG()
    D = QuadraticD(-0.2)
    loss = StyleGAN2Loss(gamma=1, style_mixing=0)
    z = torch.randn(3, 3, dtype=torch.float64)
    real = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    fake_logits = D(G.synthesis(G.mapping(z, None)), None)
    g = loss.generator_loss(G, D, z, None)
    assert g.item() == pytest.approx(F.softplus(-fake_logits).mean().item(), rel=1e-12)
    d = loss.discriminator_loss(G, D, z, None, real, None)
    expected = F.softplus(fake_logits).mean() + F.softplus(-D(real, None)).mean()
    assert d.item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"r1_interval": 0}, "loss.r1_interval must be an integer >= 1"),
        ({"pl_interval": 2.5}, "loss.pl_interval must be an integer >= 1"),
        ({"style_mixing": 1.5}, "loss.style_mixing is a probability"),
    ],
)
def test_invalid_loss_settings_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StyleGAN2Loss(gamma=1, **kwargs)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 2.5])
def test_gaussian_blur_matches_scipy(sigma):
    from scipy.ndimage import gaussian_filter

    from studio.training.loss import gaussian_blur

    images = torch.randn(2, 3, 20, 17, generator=torch.Generator().manual_seed(0))
    # scipy's radius is int(truncate * sigma + 0.5); ours is ceil(3 sigma): equal for these sigmas.
    expected = gaussian_filter(
        images.double().numpy(), sigma=(0, 0, sigma, sigma), mode="constant", truncate=3.0
    )
    torch.testing.assert_close(
        gaussian_blur(images, sigma).double(), torch.from_numpy(expected), atol=1e-5, rtol=0
    )
    assert gaussian_blur(images, 0.0) is images


def test_d_input_blur_fades_out_and_r1_differentiates_through_it():
    loss = StyleGAN2Loss(gamma=2.0, r1_interval=1, blur_init_sigma=10, blur_fade_kimg=0.2)
    assert [(loss.set_progress(n), loss.blur_sigma)[1] for n in (0, 50, 100, 200, 400)] == [10, 7.5, 5, 0, 0]
    seen = []

    def D(images, c):
        seen.append(images)
        return images.square().flatten(1).sum(1, keepdim=True)

    real = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    real[0, 0, 4, 4] = 1.0
    loss.set_progress(100)  # sigma 5
    r1 = loss.r1_loss(D, real, None)
    blurred = seen[0].detach()
    taps = [math.exp(-(k**2) / (2 * 5.0**2)) for k in range(-15, 16)]  # sigma 5: 3 sigma = 15 taps a side
    assert blurred[0, 0, 4, 4].item() == pytest.approx((1 / sum(taps)) ** 2, rel=1e-6)  # float32 taps
    # D(blur(x)) = |B x|^2, so grad_x = 2 B^T B x and R1 = gamma / 2 * |2 B^T B x|^2 (B symmetric here).
    from studio.training.loss import gaussian_blur

    grad = 2 * gaussian_blur(blurred, 5.0)
    assert r1.item() == pytest.approx((2.0 / 2) * grad.square().sum().item(), rel=1e-9)
    with pytest.raises(
        ValueError, match="loss.blur_init_sigma must be >= 0 pixels and loss.blur_fade_kimg > 0"
    ):
        StyleGAN2Loss(gamma=1.0, blur_init_sigma=-1)


class RecordingD(nn.Module):
    """D(x) = mean of x per image, [N, 2] (two logits per image, as a Projected D's several heads);
    records every input it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        self.seen.append(img.detach().clone())
        mean = img.flatten(1).mean(1, keepdim=True)
        return torch.cat([mean, 2 * mean], dim=1)


class AddOne(nn.Module):
    """A stand-in augmentation: x + 1."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images + 1


class CountingADA(AddOne):
    """Records what an adaptive augmentation is told."""

    adaptive = True
    interval = 2

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("p", torch.tensor(0.25, dtype=torch.float64))
        self.accumulated: list[torch.Tensor] = []
        self.adjusted: list[int] = []

    def accumulate(self, real_logits: torch.Tensor) -> None:
        self.accumulated.append(real_logits)

    def adjust(self, batch_size: int) -> None:
        self.adjusted.append(batch_size)


def test_hinge_values_by_hand() -> None:
    fake = torch.tensor([[-2.0, 0.5]])
    real = torch.tensor([[3.0], [0.0]])
    # relu(1 + fake): [0, 1.5] -> 0.75; relu(1 - real): [0, 1] -> 0.5
    assert hinge_d(fake, real).item() == 1.25
    assert hinge_g(fake).item() == 0.75


def test_objective_choice_and_error() -> None:
    G, D = LinearG(), RecordingD()
    z = torch.randn(3, G.z_dim, dtype=torch.float64)
    real = torch.randn(3, 1, G.hw, G.hw, dtype=torch.float64)
    hinge = StyleGAN2Loss(gamma=0, objective="hinge", style_mixing=0)
    logistic = StyleGAN2Loss(gamma=0, style_mixing=0)
    fake = G.synthesis(G.mapping(z, None))
    fake_logits, real_logits = D(fake, None), D(real, None)
    torch.testing.assert_close(
        hinge.discriminator_loss(G, D, z, None, real, None), hinge_d(fake_logits, real_logits)
    )
    expected = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    torch.testing.assert_close(logistic.discriminator_loss(G, D, z, None, real, None), expected)
    torch.testing.assert_close(hinge.generator_loss(G, D, z, None), -fake_logits.mean())
    with pytest.raises(ValueError, match=r"^loss.objective must be one of logistic, hinge, got 'wgan'$"):
        StyleGAN2Loss(gamma=0, objective="wgan")


def test_augment_sees_every_image_d_sees_including_r1() -> None:
    G, D = LinearG(), RecordingD()
    loss = StyleGAN2Loss(gamma=1.0, style_mixing=0, augment=AddOne())
    z = torch.randn(2, G.z_dim, dtype=torch.float64)
    real = torch.zeros(2, 1, G.hw, G.hw, dtype=torch.float64)
    loss.discriminator_loss(G, D, z, None, real, None)
    loss.r1_loss(D, real, None)
    loss.generator_loss(G, D, z, None)
    fake = G.synthesis(G.mapping(z, None)).detach()
    torch.testing.assert_close(D.seen[0], fake + 1)
    torch.testing.assert_close(D.seen[1], real + 1)
    torch.testing.assert_close(D.seen[2], real + 1)
    torch.testing.assert_close(D.seen[3], fake + 1)


def test_adaptive_augment_gets_real_logits_and_adjusts_every_interval() -> None:
    G, D = LinearG(), RecordingD()
    ada = CountingADA()
    loss = StyleGAN2Loss(gamma=0, style_mixing=0, augment=ada)
    assert loss.adaptive and not StyleGAN2Loss(gamma=0, augment=AddOne()).adaptive
    z = torch.randn(2, G.z_dim, dtype=torch.float64)
    real = torch.full((2, 1, G.hw, G.hw), 0.5, dtype=torch.float64)
    loss.discriminator_loss(G, D, z, None, real, None)
    assert len(ada.accumulated) == 1 and not ada.accumulated[0].requires_grad
    torch.testing.assert_close(
        ada.accumulated[0], torch.tensor([[1.5, 3.0], [1.5, 3.0]], dtype=torch.float64)
    )
    for step in range(5):
        loss.adapt_augment(step, batch_size=32)
    assert ada.adjusted == [32, 32]  # after steps 1 and 3 (interval 2)
    assert "augment.p" in loss.state_dict()
