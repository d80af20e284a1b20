"""StyleGAN2 discriminator: shapes, projection conditioning, derivatives for R1, errors."""

import math

import pytest
import torch
from torch.func import functional_call

from models.stylegan2 import Discriminator


@pytest.mark.parametrize("resolution", [4, 8, 32])
def test_output_shape(resolution: int, tiny_discriminator) -> None:
    D = tiny_discriminator(resolution)
    assert len(D.blocks) == resolution.bit_length() - 3
    logits = D(torch.randn(4, 3, resolution, resolution), None)
    assert logits.shape == (4, 1) and logits.dtype == torch.float32


def test_projection_conditioning_equals_inner_product_with_cmap(tiny_discriminator) -> None:
    D = tiny_discriminator(8, c_dim=5, cmap_dim=6)
    img, c = torch.randn(4, 3, 8, 8), torch.randn(4, 5)
    features = D.epilogue.out.weight.new_zeros(0)
    handle = D.epilogue.out.register_forward_hook(lambda m, i, o: features.set_(o.detach()))
    logits = D(img, c)
    handle.remove()
    cmap = D.mapping(None, c)
    assert features.shape == (4, 6) and cmap.shape == (4, 6)
    torch.testing.assert_close(logits, (features * cmap).sum(dim=1, keepdim=True) / math.sqrt(6))
    assert not torch.allclose(logits, D(img, c.flip(0)))


def test_cmap_dim_defaults_to_4x4_channels(tiny_discriminator) -> None:
    assert tiny_discriminator(16, c_dim=3).cmap_dim == 8
    assert tiny_discriminator(16).mapping is None


def test_gradients_reach_every_parameter(tiny_discriminator) -> None:
    D = tiny_discriminator(16, c_dim=3)
    D(torch.randn(4, 3, 16, 16), torch.randn(4, 3)).sum().backward()
    for name, p in D.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_r1_penalty_backward_reaches_every_parameter(tiny_discriminator) -> None:
    D = tiny_discriminator(16, c_dim=3)
    img = torch.randn(4, 3, 16, 16, requires_grad=True)
    (grad_img,) = torch.autograd.grad(D(img, torch.randn(4, 3)).sum(), img, create_graph=True)
    grad_img.square().sum().backward()
    # dD/dimg is piecewise constant in the biases after the last smooth op (minibatch stddev): lrelu has
    # zero second derivative. Every other parameter must receive an R1 gradient.
    no_grad = {name for name, p in D.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}
    assert no_grad == {"epilogue.conv.bias", "epilogue.fc.bias", "epilogue.out.bias"}
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)


def test_r1_second_derivatives_are_exact_in_float64() -> None:
    D = Discriminator(
        c_dim=3,
        img_resolution=8,
        img_channels=1,
        channel_base=16,
        channel_max=2,
        mapping_kwargs={"num_layers": 1},
    ).double()
    img = torch.randn(4, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    c = torch.randn(4, 3, dtype=torch.float64)
    assert torch.autograd.gradgradcheck(lambda x: D(x, c), (img,), fast_mode=True)
    # The R1 gradient d/dtheta |dD/dx|^2 needs the mixed derivative w.r.t. the parameters too.
    names = ["blocks.0.conv1.weight", "blocks.0.skip.weight", "from_rgb.bias", "epilogue.conv.weight"]
    params = {name: p.detach().requires_grad_() for name, p in D.named_parameters() if name in names}

    def input_gradient(*values: torch.Tensor) -> torch.Tensor:
        out = functional_call(D, dict(zip(names, values, strict=True)), (img, c))
        return torch.autograd.grad(out.sum(), img, create_graph=True)[0]

    assert torch.autograd.gradcheck(input_gradient, tuple(params[n] for n in names), fast_mode=True)


def test_clear_errors(tiny_discriminator) -> None:
    D = tiny_discriminator(8)
    with pytest.raises(ValueError, match=r"img must be \[N, 3, 8, 8\], got \[2, 3, 16, 16\]"):
        D(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="batch size 6 is not divisible by the group size 4"):
        D(torch.randn(6, 3, 8, 8))
    with pytest.raises(ValueError, match=r"c must be \[N, 2\], got None"):
        tiny_discriminator(8, c_dim=2)(torch.randn(2, 3, 8, 8), None)


@pytest.mark.cuda
def test_fp16_blocks_on_cuda_match_fp32(tiny_discriminator, assert_cuda_kernels_in_use) -> None:
    D32 = tiny_discriminator(32).cuda()
    D16 = tiny_discriminator(32, num_fp16_res=2).cuda()
    D16.load_state_dict(D32.state_dict())
    assert D16.blocks[0].use_fp16 and not D16.blocks[2].use_fp16
    img = torch.randn(8, 3, 32, 32, device="cuda")
    logits32, logits16 = D32(img), D16(img)
    assert logits16.dtype == torch.float32
    assert (logits16 - logits32).abs().max() < 0.02 * logits32.abs().max() + 1e-3
    assert_cuda_kernels_in_use(("bias_act", "upfirdn2d"), (torch.float32, torch.float16))
