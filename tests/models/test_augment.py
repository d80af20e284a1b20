"""Discriminator augmentations: DiffAugment and ADA against exact transforms, derivatives (R1 included),
the p heuristic and its checkpointed state."""

import math
from collections.abc import Callable

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from models.augment import AdaptiveAugment, Augment, DiffAugment
from models.augment.ada import TRANSFORMS, parse_policy
from models.augment.color import COLOR, apply_color, random_color
from models.augment.diffaugment import adjust_color, cutout, translate
from models.augment.geometry import BLIT, GENERAL, random_geometry, rotation, scaling, translation
from models.augment.sampling import blit, resample


def seeded(module: Callable[[Tensor], Tensor], seed: int = 123) -> Callable[[Tensor], Tensor]:
    """The augmentation with one fixed random draw (reseeded on every call), for gradcheck."""

    def call(x: Tensor) -> Tensor:
        torch.manual_seed(seed)
        return module(x)

    return call


def shifted(x: Tensor, dx: int, dy: int) -> Tensor:
    """Reference: x [C, H, W] moved right by dx and down by dy pixels, zeros coming in."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def gaussian(h: int, w: int, matrix: Tensor | None = None) -> Tensor:
    """An anisotropic Gaussian blob [1, 1, H, W] (sigma 3 x 5 px at the centre), optionally with its
    content moved by `matrix` [3, 3] (centred pixel coordinates) and mirrored about the edge pixel centres
    where the source lies outside (reflect padding), evaluated exactly."""
    y, x = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    points = torch.stack([x - (w - 1) / 2, y - (h - 1) / 2, torch.ones_like(x)])  # [3, H, W]
    if matrix is not None:  # the value at output q is the source's at M^-1 q, mirrored into the image
        points = torch.einsum("ij,jhw->ihw", torch.linalg.inv(matrix.double()), points)
        for axis, size in ((0, w), (1, h)):
            period = 2 * (size - 1)
            index = torch.remainder(points[axis] + (size - 1) / 2, period)
            points[axis] = torch.minimum(index, period - index) - (size - 1) / 2
    return torch.exp(-(points[0] ** 2) / (2 * 3.0**2) - points[1] ** 2 / (2 * 5.0**2)).view(1, 1, h, w)


# ---------------------------------------------------------------- common interface


def test_interface_and_adaptive_flag() -> None:
    assert isinstance(DiffAugment(), Augment) and isinstance(AdaptiveAugment(), Augment)
    assert DiffAugment.adaptive is False and AdaptiveAugment.adaptive is True


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make", [DiffAugment, lambda: AdaptiveAugment(p=1.0)])
def test_shape_and_dtype_kept(make: Callable[[], Augment], dtype: torch.dtype) -> None:
    x = torch.rand(3, 3, 12, 12, dtype=dtype) * 2 - 1
    y = make()(x)
    assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y).all()
    assert not torch.equal(y, x)


# ---------------------------------------------------------------- DiffAugment


def test_diffaugment_empty_policy_is_identity() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(DiffAugment("")(x), x)


def test_diffaugment_unknown_policy() -> None:
    with pytest.raises(
        ValueError, match=r"^unknown DiffAugment policy 'blur'; choose from color, translation, cutout$"
    ):
        DiffAugment("color,blur")


def test_translate_moves_content_by_integers_with_zero_padding() -> None:
    x = torch.randn(3, 2, 7, 9)
    dx, dy = torch.tensor([2, -3, 0]), torch.tensor([-1, 0, 4])
    got = translate(x, dx, dy)
    for n in range(3):
        torch.testing.assert_close(got[n], shifted(x[n], int(dx[n]), int(dy[n])), rtol=0, atol=0)


def test_translation_policy_shifts_up_to_an_eighth() -> None:
    x = torch.randn(12, 3, 16, 16)
    y = DiffAugment("translation")(x)
    shifts = set()
    for n in range(12):
        matches = [
            (dx, dy) for dx in range(-2, 3) for dy in range(-2, 3) if torch.equal(y[n], shifted(x[n], dx, dy))
        ]
        assert len(matches) == 1, n  # round(16 / 8) = 2 pixels at most, per sample
        shifts.add(matches[0])
    assert len(shifts) > 3  # per-sample draws


def test_cutout_zeroes_a_half_size_square() -> None:
    got = cutout(torch.ones(1, 1, 8, 8), torch.tensor([5]), torch.tensor([2]), 4, 4)
    expected = torch.ones(8, 8)
    expected[0:4, 3:7] = 0
    assert torch.equal(got[0, 0], expected)

    y = DiffAugment("cutout")(torch.ones(16, 2, 16, 16))
    assert torch.equal(y[:, 0], y[:, 1])  # the same hole in every channel
    full = 0
    for n in range(16):
        rows, cols = torch.nonzero(y[n, 0] == 0, as_tuple=True)
        r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
        assert len(rows) == (r1 - r0 + 1) * (c1 - c0 + 1)  # one axis-aligned rectangle
        assert (r1 - r0 + 1) <= 8 and (c1 - c0 + 1) <= 8  # round(16 / 2), clipped at the border
        full += len(rows) == 64
    assert full > 0


def test_color_adjustments() -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    b, s, c = torch.tensor([0.3, -0.2]), torch.tensor([0.0, 1.7]), torch.tensor([1.0, 0.6])
    got = adjust_color(x, b, s, c)
    for n in range(2):
        ref = x[n] + b[n]
        ref = (ref - ref.mean(0)) * s[n] + ref.mean(0)
        ref = (ref - ref.mean()) * c[n] + ref.mean()
        torch.testing.assert_close(got[n], ref)
    assert torch.allclose(got[0], got[0].mean(0, keepdim=True).expand(3, 4, 5))  # saturation 0: grey

    grey = torch.full((64, 3, 4, 4), 0.25)  # a flat grey image: only brightness acts
    shift = DiffAugment("color")(grey) - 0.25
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.min() >= -0.5 and shift.max() <= 0.5 and shift.std() > 0.1


def test_diffaugment_gradcheck() -> None:
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(seeded(DiffAugment()), (x,))


def test_diffaugment_reproducible_under_manual_seed() -> None:
    x = torch.randn(4, 3, 16, 16)
    torch.manual_seed(7)
    a = DiffAugment()(x)
    torch.manual_seed(7)
    assert torch.equal(DiffAugment()(x), a)
    assert not torch.equal(DiffAugment()(x), a)


# ---------------------------------------------------------------- ADA: exact paths


@pytest.mark.parametrize("policy", ["bgc", "b", "g", "c"])
def test_ada_p_zero_is_bitwise_identity(policy: str) -> None:
    x = torch.randn(8, 3, 16, 16)
    assert torch.equal(AdaptiveAugment(p=0.0, policy=policy)(x), x)


def test_ada_empty_policy_is_identity() -> None:
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(AdaptiveAugment(p=1.0, policy="")(x), x)


def dihedral(img: Tensor) -> list[Tensor]:
    """The 8 flips and quarter turns of img [C, H, W]: rot90 by k of img (k = 0..3), then of its x-flip."""
    return [torch.rot90(f, k, dims=(-2, -1)) for f in (img, img.flip(-1)) for k in range(4)]


def test_xflip_and_rotate90_are_exact_blits() -> None:
    x = torch.randn(24, 3, 10, 10)
    for policy, allowed in [("xflip", {0, 4}), ("rotate90", {0, 1, 2, 3}), ("xflip,rotate90", set(range(8)))]:
        y = AdaptiveAugment(p=1.0, policy=policy)(x)
        seen = set()
        for n in range(24):
            matches = [i for i, ref in enumerate(dihedral(x[n])) if torch.equal(y[n], ref)]
            assert matches and matches[0] in allowed, (policy, n)
            seen.add(matches[0])
        assert seen == allowed, policy  # every outcome occurs


def test_integer_translation_is_exact_with_reflect_padding() -> None:
    x = torch.randn(16, 2, 16, 16)
    y = AdaptiveAugment(p=1.0, policy="xint")(x)
    padded = F.pad(x, [2] * 4, mode="reflect")  # round(0.125 * 16) = 2 pixels at most
    for n in range(16):
        matches = [
            (dx, dy)
            for dx in range(-2, 3)
            for dy in range(-2, 3)
            if torch.equal(y[n], padded[n, :, 2 - dy : 18 - dy, 2 - dx : 18 - dx])
        ]
        assert len(matches) == 1, n


def test_blit_matrix_composition_is_exact() -> None:
    x = torch.randn(1, 1, 6, 6)
    flip = scaling(torch.tensor([-1.0]), torch.tensor([1.0]))
    quarter = rotation(torch.tensor([0.0]), torch.tensor([1.0]))
    move = translation(torch.tensor([1.0]), torch.tensor([0.0]))
    got = blit(x, move @ quarter @ flip)
    ref = F.pad(torch.rot90(x.flip(-1), -1, dims=(-2, -1)), [1, 0, 0, 0], mode="reflect")[..., :6]
    assert torch.equal(got, ref)


# ---------------------------------------------------------------- ADA: resampling


@pytest.mark.parametrize(
    "matrix",
    [
        torch.eye(3),
        scaling(torch.tensor([-1.0]), torch.tensor([1.0]))[0],  # x-flip through the resampler
        translation(torch.tensor([1.3]), torch.tensor([-0.6]))[0],
        translation(torch.tensor([20.0]), torch.tensor([3.0]))[0],  # mostly mirrored content
        (
            rotation(torch.tensor([math.cos(0.5)]), torch.tensor([math.sin(0.5)]))
            @ scaling(torch.tensor([1.2]), torch.tensor([0.9]))
        )[0],
    ],
)
def test_resampling_a_smooth_image_follows_the_exact_transform(matrix: Tensor) -> None:
    got = resample(gaussian(32, 32), matrix.unsqueeze(0).float())
    expected = gaussian(32, 32, matrix).float()
    assert (got - expected).abs().max() < 0.005  # peak 1: bilinear on the 2x image costs < 0.4%


def test_resampling_keeps_constants_and_mirrors_at_borders() -> None:
    ones = torch.ones(2, 3, 7, 9)
    big_move = rotation(torch.tensor([0.6, -0.8]), torch.tensor([0.8, 0.6])) @ translation(
        torch.tensor([20.0, -3.5]), torch.tensor([4.0, 11.0])
    )
    torch.testing.assert_close(resample(ones, big_move), ones)  # reflect padding: no black borders


def test_geometry_probabilities_follow_the_paper() -> None:
    n, p = 40000, torch.tensor(0.3, dtype=torch.float64)
    _, general = random_geometry(n, p, frozenset({"rotate"}), 8, 8, torch.float32, torch.device("cpu"))
    assert general.float().mean().item() == pytest.approx(0.3, abs=0.01)  # pre or post: 1 - (1 - p_rot)^2
    _, general = random_geometry(n, p, frozenset({"scale"}), 8, 8, torch.float32, torch.device("cpu"))
    assert general.float().mean().item() == pytest.approx(0.3, abs=0.01)
    matrix, general = random_geometry(n, p, frozenset(BLIT), 8, 8, torch.float32, torch.device("cpu"))
    assert not general.any() and torch.equal(matrix, matrix.round())  # blits only: integer matrices
    matrix, _ = random_geometry(
        n, torch.tensor(1.0), frozenset({"scale"}), 8, 8, torch.float32, torch.device("cpu")
    )
    log2_scale = torch.log2(matrix[:, 0, 0])
    assert log2_scale.std().item() == pytest.approx(0.2, rel=0.03) and torch.equal(
        matrix[:, 0, 0], matrix[:, 1, 1]
    )
    matrix, _ = random_geometry(
        n, torch.tensor(1.0), frozenset({"xfrac"}), 8, 16, torch.float32, torch.device("cpu")
    )
    assert matrix[:, 0, 2].std().item() == pytest.approx(0.125 * 16, rel=0.03)  # x by the width
    assert matrix[:, 1, 2].std().item() == pytest.approx(0.125 * 8, rel=0.03)


# ---------------------------------------------------------------- ADA: colour


def test_color_matrix_is_identity_when_disabled_or_p_zero() -> None:
    cpu, eye = torch.device("cpu"), torch.eye(4).expand(5, 4, 4)
    for enabled, p in [(frozenset(), 1.0), (frozenset(COLOR), 0.0)]:
        matrix, active = random_color(5, torch.tensor(p), enabled, torch.float32, cpu)
        assert torch.equal(matrix, eye) and not active.any()
    x = torch.randn(5, 3, 4, 4)
    assert torch.equal(apply_color(x, eye), x)


def test_color_transforms_keep_what_they_should() -> None:
    cpu, one, v = torch.device("cpu"), torch.tensor(1.0), torch.tensor([1.0, 1, 1, 0]) / math.sqrt(3)
    for name in ("lumaflip", "hue", "saturation", "contrast"):
        matrix, active = random_color(64, one, frozenset({name}), torch.float64, cpu)
        assert active.all()
        assert torch.equal(matrix[:, 3], torch.tensor([0.0, 0, 0, 1], dtype=torch.float64).expand(64, 4))
        assert torch.allclose(matrix[:, :3, 3], torch.zeros(64, 3, dtype=torch.float64))  # no offset
    hue, _ = random_color(64, one, frozenset({"hue"}), torch.float64, cpu)
    torch.testing.assert_close(
        hue[:, :3, :3] @ hue[:, :3, :3].transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    )
    torch.testing.assert_close(hue @ v.double(), v.double().expand(64, 4))  # grey stays grey
    flip, _ = random_color(64, one, frozenset({"lumaflip"}), torch.float64, cpu)
    signs = (flip @ v.double())[:, 0] * math.sqrt(3)  # +1 kept, -1 flipped
    assert set(signs.round().tolist()) == {-1.0, 1.0}
    sat, _ = random_color(4096, one, frozenset({"saturation"}), torch.float64, cpu)
    chroma = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64)  # orthogonal to grey
    assert torch.log2((sat @ chroma)[:, 0]).std().item() == pytest.approx(1.0, rel=0.05)
    bright, _ = random_color(4096, one, frozenset({"brightness"}), torch.float64, cpu)
    assert bright[:, 0, 3].std().item() == pytest.approx(0.2, rel=0.05)


def test_color_on_grey_images_and_channel_errors() -> None:
    aug = AdaptiveAugment(p=1.0, policy="brightness")
    torch.manual_seed(3)
    grey = aug(torch.zeros(4, 1, 5, 5))
    torch.manual_seed(3)
    rgb = aug(torch.zeros(4, 3, 5, 5))
    torch.testing.assert_close(grey, rgb[:, :1])  # a grey image is (g, g, g) seen through its luma
    with pytest.raises(ValueError, match=r"^colour transforms need 1 or 3 channels, got 4$"):
        AdaptiveAugment(p=1.0, policy="c")(torch.zeros(2, 4, 5, 5))


# ---------------------------------------------------------------- ADA: derivatives


def test_ada_gradcheck_and_gradgradcheck() -> None:
    # Fast mode (random projections of the Jacobian) keeps the full 'bgc' pipeline cheap; the exhaustive
    # check runs on a grey 4 x 4 image.
    aug = AdaptiveAugment(p=1.0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(seeded(aug), (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(seeded(aug), (x,), fast_mode=True)
    grey = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(seeded(aug), (grey,))


def r1_parameter_grads(D: torch.nn.Module, augment: Callable[[Tensor], Tensor]) -> list[Tensor | None]:
    """D's parameter gradients of the R1 penalty |grad_x D(augment(x))|^2 (backprop through the gradient)."""
    D.zero_grad(set_to_none=True)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(D(augment(x), None).sum(), x, create_graph=True)
    grad.square().sum().backward()
    return [q.grad for q in D.parameters()]


def test_r1_through_ada(tiny_discriminator) -> None:
    D = tiny_discriminator(16)
    plain = r1_parameter_grads(D, lambda x: x)
    augmented = r1_parameter_grads(D, AdaptiveAugment(p=1.0))

    # The same parameters get nonzero R1 gradients as without augmentation (not the output bias, on which
    # grad_x D does not depend, nor the epilogue's biases in this tiny D).
    def pattern(grads: list[Tensor | None]) -> list[str]:
        return ["none" if g is None else "zero" if not g.abs().sum() > 0 else "some" for g in grads]

    assert pattern(augmented) == pattern(plain) and pattern(plain).count("some") > 5
    assert all(torch.isfinite(g).all() for g in augmented if g is not None)


# ---------------------------------------------------------------- ADA: adaptation and state


def test_p_rises_above_target_falls_below_and_is_clamped() -> None:
    aug = AdaptiveAugment(p=0.5)
    step = 8 * 4 / 500_000
    aug.accumulate(torch.tensor([[1.0], [2.0], [-1.0], [3.0], [0.5], [1.0], [1.0], [1.0]]))  # r_t = 0.75
    assert aug.sign_sum.item() == 6 and aug.count.item() == 8
    aug.adjust(batch_size=8)
    assert aug.p.item() == pytest.approx(0.5 + step, abs=1e-15)
    assert aug.sign_sum.item() == 0 and aug.count.item() == 0  # reset
    aug.accumulate(-torch.ones(8, 1))
    aug.accumulate(torch.ones(4, 1))  # r_t = -1/3
    aug.adjust(batch_size=8)
    assert aug.p.item() == pytest.approx(0.5, abs=1e-15)
    aug.adjust(batch_size=8)  # nothing accumulated: unchanged
    assert aug.p.item() == pytest.approx(0.5, abs=1e-15)
    # Several logits per image (a Projected GAN's heads) count once per image, by their mean.
    aug.accumulate(torch.tensor([[3.0, -1.0, -1.0], [-3.0, 1.0, 1.0]]))
    assert (aug.sign_sum.item(), aug.count.item()) == (0, 2)

    fast = AdaptiveAugment(p=0.9, speed_kimg=0.016)  # one step of 8 x 4 images = 2
    fast.accumulate(torch.ones(4))
    fast.adjust(8)
    assert fast.p.item() == 1.0
    fast.accumulate(-torch.ones(4))
    fast.adjust(8)
    assert fast.p.item() == 0.0

    fixed = AdaptiveAugment(p=0.2, target=None)
    fixed.accumulate(torch.ones(4))
    fixed.adjust(8)
    assert fixed.p.item() == pytest.approx(0.2) and fixed.count.item() == 0


def test_state_dict_round_trip_resumes_exactly() -> None:
    aug = AdaptiveAugment(p=0.0)
    for _ in range(3):
        aug.accumulate(torch.randn(16, 1) + 1)
        aug.adjust(16)
    aug.p.fill_(0.7)
    aug.accumulate(torch.randn(16, 1))
    state = aug.state_dict()
    assert set(state) == {"p", "sign_sum", "count"} and state["p"].dtype == torch.float64

    resumed = AdaptiveAugment().to(torch.bfloat16)  # the state stays float64 under any module cast
    resumed.load_state_dict(state)
    for name in ("p", "sign_sum", "count"):
        assert torch.equal(getattr(resumed, name), getattr(aug, name))
    x = torch.randn(6, 3, 16, 16)
    rng = torch.get_rng_state()
    a = aug(x)
    torch.set_rng_state(rng)
    assert torch.equal(resumed(x), a)
    logits = torch.randn(16, 1)
    for module in (aug, resumed):
        module.accumulate(logits)
        module.adjust(16)
    assert torch.equal(resumed.p, aug.p)


def test_ada_reproducible_under_manual_seed() -> None:
    x = torch.randn(4, 3, 16, 16)
    aug = AdaptiveAugment(p=0.8)
    torch.manual_seed(11)
    a = aug(x)
    torch.manual_seed(11)
    assert torch.equal(aug(x), a)
    assert not torch.equal(aug(x), a)


def test_adjust_sums_over_ranks(tmp_path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        aug = AdaptiveAugment(p=0.5)
        aug.accumulate(torch.ones(8))
        aug.adjust(8)
        assert aug.p.item() == pytest.approx(0.5 + 8 * 4 / 500_000) and aug.count.item() == 0
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------- arguments


def test_policies() -> None:
    assert parse_policy("bgc") == frozenset(TRANSFORMS) and len(TRANSFORMS) == 12
    assert parse_policy("bg") == frozenset(BLIT + GENERAL)
    assert parse_policy("xflip, hue") == {"xflip", "hue"} and parse_policy("") == frozenset()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 1.5}, "p must be in [0, 1], got 1.5"),
        ({"p": -0.1}, "p must be in [0, 1], got -0.1"),
        ({"target": 2.0}, "target must be in [0, 1] or None, got 2.0"),
        ({"interval": 0}, "interval must be a positive number of steps, got 0"),
        ({"speed_kimg": 0.0}, "speed_kimg must be positive, got 0.0"),
        (
            {"policy": "bgx"},
            "unknown ADA policy 'bgx': use letters of 'bgc' (b = pixel blitting, g = general geometric, "
            "c = colour) or a comma-separated list of xflip, rotate90, xint, scale, rotate, aniso, xfrac, "
            "brightness, contrast, lumaflip, hue, saturation",
        ),
    ],
)
def test_ada_argument_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        AdaptiveAugment(**kwargs)
    assert str(info.value) == message
