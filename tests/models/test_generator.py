"""StyleGAN2 generator: shapes, modconv paths, truncation, w_avg, noise, derivatives."""

import pytest
import torch

from models.stylegan2 import Generator


@pytest.mark.parametrize("resolution", [4, 8, 16, 32, 64])
def test_output_shape_and_num_ws(resolution: int, tiny_generator) -> None:
    G = tiny_generator(resolution)
    img = G(torch.randn(3, 16), None)
    assert img.shape == (3, 3, resolution, resolution)
    assert img.dtype == torch.float32
    assert G.num_ws == 2 * (resolution.bit_length() - 1) - 2
    assert G.mapping(torch.randn(3, 16), None).shape == (3, G.num_ws, 16)


def test_conditional_generator_uses_the_label() -> None:
    G = Generator(
        z_dim=16,
        c_dim=5,
        w_dim=16,
        img_resolution=8,
        img_channels=1,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs={"channel_base": 64, "channel_max": 8},
    )
    z = torch.randn(4, 16)
    c = torch.nn.functional.one_hot(torch.arange(4), 5).float()
    img = G(z, c, noise_mode="const")
    assert img.shape == (4, 1, 8, 8)
    assert not torch.allclose(img, G(z, c.roll(1, dims=1), noise_mode="const"))
    with pytest.raises(ValueError, match=r"c must be \[N, 5\], got None"):
        G(z, None)


@pytest.mark.parametrize("resolution", [4, 32])
def test_fused_and_per_sample_modconv_agree(resolution: int, tiny_generator) -> None:
    G = tiny_generator(resolution)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if "noise_strength" in name or name.endswith("bias"):
                p.normal_()
    ws = G.mapping(torch.randn(4, 16), None)
    fused = G.synthesis(ws, noise_mode="const", fused_modconv=True)
    per_sample = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    torch.testing.assert_close(fused, per_sample, rtol=1e-5, atol=1e-5 * per_sample.abs().max().item())


def test_fused_modconv_constructor_switch(tiny_generator) -> None:
    assert tiny_generator(8, fused_modconv=True).synthesis.use_fused_modconv(torch.zeros(4, 4, 16))
    assert not tiny_generator(8, fused_modconv=False).synthesis.use_fused_modconv(torch.zeros(1, 4, 16))


def test_truncation_psi_zero_gives_w_avg_and_cutoff_is_respected(tiny_generator) -> None:
    G = tiny_generator(16)
    G.mapping.w_avg.normal_()
    z = torch.randn(5, 16)
    ws = G.mapping(z, None)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))  # broadcast: every ws is the same w
    ws0 = G.mapping(z, None, truncation_psi=0)
    torch.testing.assert_close(ws0, G.mapping.w_avg.expand_as(ws0))
    cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], G.mapping.w_avg + 0.5 * (ws[:, :2] - G.mapping.w_avg))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])


def test_w_avg_updates_only_with_update_emas(tiny_generator) -> None:
    G = tiny_generator(8)
    G.mapping.w_avg.fill_(1.0)
    z = torch.randn(6, 16)
    G(z, None)
    assert torch.equal(G.mapping.w_avg, torch.ones(16))
    w = G.mapping(z, None)[:, 0]
    G(z, None, update_emas=True)
    torch.testing.assert_close(G.mapping.w_avg, 0.995 * torch.ones(16) + 0.005 * w.mean(dim=0))


def test_noise_modes(tiny_generator) -> None:
    G = tiny_generator(8)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if "noise_strength" in name:
                p.fill_(1.0)
    ws = G.mapping(torch.randn(2, 16), None)
    const = G.synthesis(ws, noise_mode="const")
    assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
    assert torch.equal(G.synthesis(ws, noise_mode="none"), G.synthesis(ws, noise_mode="none"))
    assert not torch.allclose(const, G.synthesis(ws, noise_mode="none"))
    assert not torch.allclose(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        G.synthesis(ws, noise_mode="fixed")


def test_conv_clamp_bounds_every_torgb_output(tiny_generator) -> None:
    G = tiny_generator(16, conv_clamp=0.01)
    img = G(torch.randn(2, 16), None)
    # Each of the 3 blocks adds a clamped ToRGB to the upsampled image (the filter preserves the bound).
    assert img.abs().max() <= 0.03 + 1e-6
    assert tiny_generator(16, conv_clamp=None)(torch.randn(2, 16), None).abs().max() > 0.03


@pytest.mark.parametrize("fused", [True, False])
def test_gradients_reach_every_parameter(fused: bool, tiny_generator) -> None:
    G = tiny_generator(16, c_dim=3, fused_modconv=fused)
    img = G(torch.randn(2, 16), torch.randn(2, 3))
    (img * torch.randn_like(img)).sum().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("fused", [True, False])
def test_path_length_second_derivative(fused: bool, tiny_generator) -> None:
    G = tiny_generator(16, fused_modconv=fused)
    ws = G.mapping(torch.randn(2, 16), None)
    img = G.synthesis(ws, noise_mode="const")
    (grad_ws,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    grad_ws.square().sum().backward()
    assert G.synthesis.blocks[-1].conv1.weight.grad.abs().sum() > 0


def test_synthesis_second_derivative_is_exact_in_float64() -> None:
    G = Generator(
        z_dim=2,
        w_dim=2,
        img_resolution=8,
        img_channels=1,
        mapping_kwargs={"num_layers": 1},
        synthesis_kwargs={"channel_base": 8, "channel_max": 2},
    ).double()
    ws = G.mapping(torch.randn(2, 2, dtype=torch.float64), None).detach().requires_grad_()
    for fused in (True, False):

        def synthesis(w: torch.Tensor, fused: bool = fused) -> torch.Tensor:
            return G.synthesis(w, noise_mode="const", fused_modconv=fused)

        assert torch.autograd.gradgradcheck(synthesis, (ws,), fast_mode=True)


def test_clear_errors(tiny_generator) -> None:
    G = tiny_generator(8)
    with pytest.raises(ValueError, match=r"ws must be \[N, 4, 16\] \(N, num_ws, w_dim\), got \[2, 3, 16\]"):
        G.synthesis(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match=r"z must be \[N, 16\], got \[2, 8\]"):
        G(torch.randn(2, 8), None)
    with pytest.raises(ValueError, match="img_resolution must be a power of two >= 4, got 48"):
        tiny_generator(48)
    with pytest.raises(ValueError, match="conv_clamp must be a number, None or 'auto', got 'big'"):
        tiny_generator(8, conv_clamp="big")


@pytest.mark.cuda
def test_fp16_blocks_on_cuda_match_fp32(tiny_generator, assert_cuda_kernels_in_use) -> None:
    G32 = tiny_generator(32).cuda()
    G16 = tiny_generator(32, num_fp16_res=2).cuda()
    G16.load_state_dict(G32.state_dict())
    assert G16.synthesis.blocks[-1].use_fp16 and not G16.synthesis.blocks[1].use_fp16
    ws = G32.mapping(torch.randn(8, 16, device="cuda"), None)
    img32 = G32.synthesis(ws, noise_mode="const")
    img16 = G16.synthesis(ws, noise_mode="const")
    assert img16.dtype == torch.float32 and torch.isfinite(img16).all()
    assert (img16 - img32).abs().max() < 0.02 * img32.abs().max()
    img16.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in G16.parameters() if p.grad is not None)
    assert_cuda_kernels_in_use(("bias_act", "upfirdn2d"), (torch.float32, torch.float16))
