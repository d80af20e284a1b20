"""FastGAN generator: shapes, parameter counts, skip-layer excitation, noise, truncation, conditioning,
registry, BatchNorm modes, memory format, EMA copy and clear errors."""

import copy

import pytest
import torch

import models.fastgan  # noqa: F401  (registers "fastgan-generator")
from models.fastgan import SLE_SOURCES, Generator
from models.registry import create_network, network_name
from studio.training.optim import update_ema_

SMALL = {"z_dim": 32, "ngf": 16}  # 256 channels at 4x4, 8 at 256x256: fast on a CPU


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The networks here are tiny (the spectral norms' power iterations are many small matrix-vector
    products): intra-op threads gain nothing, and on a busy 2-core machine they made the file 5x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_generator(img_resolution: int = 32, lite: bool = False, c_dim: int = 0) -> Generator:
    return Generator(img_resolution=img_resolution, lite=lite, c_dim=c_dim, **SMALL)


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def set_noise_strengths(G: Generator, value: float) -> None:
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("strength"):
                p.fill_(value)


@pytest.mark.parametrize("lite", [False, True])
@pytest.mark.parametrize("resolution", [32, 64, 256])
def test_output_shapes_and_interface(resolution: int, lite: bool) -> None:
    G = small_generator(resolution, lite)
    z = torch.randn(2, 32)
    img = G(z, None)
    assert img.shape == (2, 3, resolution, resolution) and img.dtype == torch.float32
    assert img.abs().max() <= 1
    assert (G.z_dim, G.c_dim, G.w_dim, G.num_ws) == (32, 0, 32, 1)
    assert (G.img_resolution, G.img_channels) == (resolution, 3)
    ws = G.mapping(z, None)
    assert ws.shape == (2, 1, 32)
    assert G.synthesis(ws, noise_mode="const").shape == img.shape
    assert list(G.synthesis.blocks) == [str(2**i) for i in range(3, resolution.bit_length())]
    assert sorted(map(int, G.synthesis.sle)) == [r for r in SLE_SOURCES if r <= resolution]
    has_noise = any("noise" in name for name, _ in G.named_modules())
    assert has_noise is not lite


# FastGAN's channel table (ngf x multiplier), restated here so the count is checked against the paper's
# layout, not against the module's own constant.
MULTIPLIERS = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}


def expected_params(resolution: int, lite: bool, z_dim: int = 256, ngf: int = 128, c_dim: int = 0) -> int:
    """Parameters of the layout described in the module docstring, layer by layer."""
    ch = {r: int(m * ngf) for r, m in MULTIPLIERS.items()}
    # Init: 4x4 transposed conv z_dim -> 2 C4 (no bias: BatchNorm follows), BatchNorm scale and shift.
    n = z_dim * 2 * ch[4] * 16 + 2 * 2 * ch[4]
    for r in (2**i for i in range(3, resolution.bit_length())):
        cin, c = ch[r // 2], ch[r]
        if lite:  # 3x3 conv cin -> 2c, BatchNorm(2c)
            n += cin * 2 * c * 9 + 2 * 2 * c
        else:  # 3x3 convs cin -> 2c and c -> 2c, two BatchNorm(2c), two scalar noise strengths
            n += cin * 2 * c * 9 + c * 2 * c * 9 + 2 * 2 * 2 * c + 2
    for target, source in ((64, 4), (128, 8), (256, 16), (512, 32)):
        if target <= resolution:  # SLE: 4x4 conv C_source -> C_target, 1x1 conv C_target -> C_target
            n += ch[source] * ch[target] * 16 + ch[target] ** 2
    n += ch[resolution] * 3 * 9 + 3  # to-RGB 3x3 conv with bias
    return n + c_dim * z_dim  # class embedding table


@pytest.mark.parametrize(
    ("resolution", "lite", "count"), [(256, False, 105_684_175), (256, True, 79_354_307)]
)
def test_projected_gan_size_parameter_counts(resolution: int, lite: bool, count: int) -> None:
    # No parameter count is published for Projected GAN's FastGAN generator (ngf 128, z_dim 256); these
    # are regression values. At 256x256 (big): init 16.79 M (256 x 4096 x 16 + 8192), up-blocks
    # 8: 56.63 M, 16: 14.16 M, 32: 3.54 M, 64: 2.36 M, 128: 0.89 M, 256: 0.22 M, SLEs 4->64: 8.45 M,
    # 8->128: 2.11 M, 16->256: 0.53 M, to-RGB 1731. Lite has one conv per block (8x8: 37.75 M, ...).
    # The init layer and the 8x8 block (2048 and 1024 channels) hold ~70% of the weights. At 1024x1024
    # the counts are 105_884_483 (big) and 79_531_379 (lite).
    with torch.device("meta"):  # counts only: no memory, no weight initialisation
        G = Generator(img_resolution=resolution, lite=lite)
    assert num_params(G) == count == expected_params(resolution, lite)


@pytest.mark.parametrize("lite", [False, True])
@pytest.mark.parametrize(("resolution", "c_dim"), [(16, 0), (64, 7), (1024, 0)])
def test_parameter_counts_follow_the_layout(resolution: int, c_dim: int, lite: bool) -> None:
    G = Generator(z_dim=16, c_dim=c_dim, img_resolution=resolution, ngf=8, lite=lite)
    assert num_params(G) == expected_params(resolution, lite, z_dim=16, ngf=8, c_dim=c_dim)


@pytest.mark.parametrize(("resolution", "source"), [(64, 4), (128, 8)])
def test_skip_layer_excitation_carries_gradient_from_low_resolution(resolution: int, source: int) -> None:
    G = small_generator(resolution, lite=True)
    synthesis = G.synthesis
    low = synthesis.init if source == 4 else synthesis.blocks[str(source)]
    captured = {}

    def keep(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        output.retain_grad()
        captured["feat"] = output

    def cut(module: torch.nn.Module, args: tuple) -> tuple:
        return (args[0].detach(), *args[1:])

    low.register_forward_hook(keep)
    # Cutting the main path right after `source`: the only remaining route is the SLE into `resolution`.
    synthesis.blocks[str(2 * source)].register_forward_pre_hook(cut)
    img = G(torch.randn(3, 32), None)
    (img * torch.randn_like(img)).sum().backward()
    grad = captured["feat"].grad
    assert grad is not None and grad.abs().sum() > 0
    sle = synthesis.sle[str(resolution)]
    assert sle.conv1.parametrizations.weight.original.grad.abs().sum() > 0


def test_noise_modes() -> None:
    G = small_generator(32).eval()
    set_noise_strengths(G, 1.0)
    ws = G.mapping(torch.randn(2, 32), None)
    const = G.synthesis(ws, noise_mode="const")
    assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
    none = G.synthesis(ws, noise_mode="none")
    assert torch.equal(none, G.synthesis(ws, noise_mode="none"))
    assert not torch.allclose(const, none)
    assert not torch.allclose(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
    with pytest.raises(ValueError, match=r"noise_mode must be one of \('random', 'const', 'none'\), got 'x'"):
        G.synthesis(ws, noise_mode="x")
    # The constant noise comes from fixed seeds, not from the global RNG state at construction.
    torch.manual_seed(123)
    other = small_generator(32)
    assert torch.equal(
        other.synthesis.blocks["16"].noise2.noise_const, G.synthesis.blocks["16"].noise2.noise_const
    )


def test_truncation_shrinks_towards_zero() -> None:
    G = small_generator(32).eval()
    set_noise_strengths(G, 1.0)
    z = torch.randn(4, 32)
    ws = G.mapping(z, None)
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.5), 0.5 * ws)
    assert torch.equal(G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=0), ws)
    assert torch.equal(G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=1), 0.5 * ws)
    # Projected GAN's normalisation: each w has unit second moment before truncation.
    torch.testing.assert_close(ws.square().mean(dim=2), torch.ones(4, 1))
    img = G(z, None, truncation_psi=0, noise_mode="const")
    assert torch.equal(img, img[:1].expand_as(img))


def test_conditioning_adds_a_class_embedding() -> None:
    G = small_generator(32, c_dim=5).eval()
    z = torch.randn(4, 32)
    c = torch.nn.functional.one_hot(torch.arange(4), 5).float()
    ws = G.mapping(z, c)
    torch.testing.assert_close(ws[:, 0], G.mapping(z, torch.zeros(4, 5))[:, 0] + G.mapping.embed.weight.T[:4])
    # psi = 0 lands on the class's own latent mean: same image for every z of a class, not across classes.
    img = G(z, c[[2, 2, 3, 3]], truncation_psi=0, noise_mode="const")
    assert torch.equal(img[0], img[1]) and torch.equal(img[2], img[3])
    assert not torch.allclose(img[0], img[2])
    assert not torch.allclose(G(z, c, noise_mode="const"), G(z, c.roll(1, dims=1), noise_mode="const"))


def test_registry_name() -> None:
    G = create_network("fastgan-generator", z_dim=16, img_resolution=16, ngf=16, lite=True)
    assert isinstance(G, Generator) and G.img_resolution == 16 and G.lite
    assert network_name(G) == ("fastgan-generator", 1)
    assert create_network("fastgan-generator", 1, z_dim=16, img_resolution=16, ngf=16)(
        torch.randn(2, 16)
    ).shape == (2, 3, 16, 16)


def test_eval_mode_uses_running_statistics() -> None:
    G = small_generator(16)
    z = torch.randn(6, 32)
    G(z, None)  # train mode: batch statistics, and the running statistics move
    assert not torch.equal(
        G.synthesis.init.norm.running_mean, torch.zeros_like(G.synthesis.init.norm.running_mean)
    )
    G.eval()
    # Per-sample results no longer depend on the rest of the batch.
    full = G(z, None, noise_mode="const")
    torch.testing.assert_close(G(z[:2], None, noise_mode="const"), full[:2])


def test_channels_last_matches_contiguous_and_trains() -> None:
    G = small_generator(32).eval()
    set_noise_strengths(G, 0.5)
    ws = G.mapping(torch.randn(2, 32), None)
    reference = G.synthesis(ws, noise_mode="const")
    G_cl = copy.deepcopy(G).to(memory_format=torch.channels_last)
    torch.testing.assert_close(G_cl.synthesis(ws, noise_mode="const"), reference, rtol=1e-4, atol=1e-5)
    G_cl.train()
    img = G_cl(torch.randn(2, 32), None)
    img.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in G_cl.parameters() if p.grad is not None)


@pytest.mark.parametrize("lite", [False, True])
def test_gradients_reach_every_parameter(lite: bool) -> None:
    G = small_generator(64, lite, c_dim=3)
    img = G(torch.randn(3, 32), torch.randn(3, 3))
    (img * torch.randn_like(img)).sum().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_ema_copy_and_checkpoint_round_trip() -> None:
    G = small_generator(32)
    G(torch.randn(4, 32), None)  # a training forward first: spectral-norm and BN buffers have moved
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G(torch.randn(4, 32), None)
    update_ema_(G_ema, G, 0.5)  # lerps parameters, copies buffers (studio's G_ema update)
    restored = create_network("fastgan-generator", z_dim=32, img_resolution=32, ngf=16).eval()
    restored.load_state_dict(G_ema.state_dict())
    z = torch.randn(3, 32)
    assert torch.equal(restored(z, None, noise_mode="const"), G_ema(z, None, noise_mode="const"))


def test_clear_errors() -> None:
    for bad in (48, 8, 2048, 256.0):
        with pytest.raises(
            ValueError, match=rf"img_resolution must be a power of two in \[16, 1024\], got {bad}"
        ):
            Generator(img_resolution=bad)
    with pytest.raises(ValueError, match="ngf must be an integer >= 8 at img_resolution 1024, got 4"):
        Generator(img_resolution=1024, ngf=4)
    with pytest.raises(ValueError, match="c_dim must be an integer >= 0, got -1"):
        Generator(c_dim=-1)
    G = small_generator(16, c_dim=5)
    z = torch.randn(4, 32)
    with pytest.raises(ValueError, match=r"c must be \[N, 5\], got None"):
        G(z, None)
    with pytest.raises(ValueError, match=r"c must be \[N, 5\], got \[4, 3\]"):
        G(z, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="c has 3 rows but z has 4; they must match"):
        G(z, torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"z must be \[N, 32\], got \[4, 8\]"):
        G(torch.randn(4, 8), torch.zeros(4, 5))
    with pytest.raises(ValueError, match=r"c must be None or \[N, 0\] \(c_dim is 0\), got \[4, 5\]"):
        small_generator(16)(z, torch.zeros(4, 5))
    assert small_generator(16)(z, torch.zeros(4, 0)).shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match=r"ws must be \[N, 1, 32\] \(N, num_ws, w_dim\), got \[4, 2, 32\]"):
        G.synthesis(torch.randn(4, 2, 32))
