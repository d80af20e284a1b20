"""The fp16 training path (fp16 layers of G and D, conv clamping, lazy R1's double backward, StyleGAN3-R's
blur of D's inputs) run on the CPU by making the layers compute in float16 here too: a dtype slip that
would only crash or promote on a GPU shows up without one. The CUDA kernels themselves are the `cuda`
tests' business."""

import pytest
import torch

import models.stylegan2.discriminator as stylegan2_discriminator
import models.stylegan2.synthesis as stylegan2_synthesis
import models.stylegan3.layers as stylegan3_layers
from studio.training.run import train


@pytest.mark.parametrize(
    "opts",
    [
        ("model.num_fp16_res=4", "model.conv_clamp=256"),  # the tiny StyleGAN2, as the 256² presets run it
        (
            "model=stylegan3_r",
            "loss=stylegan3",
            "loss.blur_init_sigma=2",
            "model.num_fp16_res=4",
            "model.conv_clamp=256",
            "data.resolution=32",
            "model.generator.synthesis_kwargs.channel_base=512",
            "model.generator.synthesis_kwargs.channel_max=16",
        ),
    ],
    ids=["stylegan2", "stylegan3_r"],
)
def test_training_steps_in_float16_stay_finite(opts, tmp_path, tiny_cfg, monkeypatch) -> None:
    half = []

    def compute_dtype(use_fp16: bool, device: torch.device, param_dtype: torch.dtype) -> torch.dtype:
        half.append(use_fp16)
        return torch.float16 if use_fp16 else param_dtype

    for module in (stylegan2_synthesis, stylegan2_discriminator, stylegan3_layers):
        monkeypatch.setattr(module, "compute_dtype", compute_dtype)
    module = train(tiny_cfg(tmp_path, *opts, "train.kimg=0.024", "loss.r1_interval=2", "ckpt.every_kimg=100"))
    assert module.num_steps == 6 and module.done
    assert any(half)  # layers ran in float16
    for net in (module.G, module.D, module.G_ema):
        assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in net.parameters())
