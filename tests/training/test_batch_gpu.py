"""train.batch_gpu: the batch of each process runs in passes of that many images, gradients added up."""

import pytest
import torch

import studio.training.module as module_file
from studio.training.config_check import ConfigError
from studio.training.module import batch_passes
from studio.training.optim import finite_gradients_
from studio.training.run import train


def test_passes_tile_the_batch_or_the_batch_is_one_pass() -> None:
    assert batch_passes(32, None) == [slice(0, 32)]
    assert batch_passes(32, 16) == [slice(0, 16), slice(16, 32)]
    assert batch_passes(32, 8) == [slice(0, 8), slice(8, 16), slice(16, 24), slice(24, 32)]
    assert batch_passes(4, 16) == [slice(0, 4)]  # e.g. batch 32 on 8 GPUs with a preset's batch_gpu=16
    with pytest.raises(ValueError) as err:
        batch_passes(32, 12)
    assert str(err.value) == (
        "train.batch_gpu=12 must divide the 32 images each process trains on per step (train.batch / "
        "processes), or be at least that many."
    )


def recorded_gradients(monkeypatch, tiny_cfg, run_dir, *overrides) -> list[dict[str, torch.Tensor]]:
    """The gradients of every optimizer step (after the passes and the all-reduce) of a one-step run."""
    steps = []

    def record(net: torch.nn.Module) -> None:
        steps.append({name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None})
        finite_gradients_(net)

    monkeypatch.setattr(module_file, "finite_gradients_", record)
    train(tiny_cfg(run_dir, "train.kimg=0.004", *overrides))
    return steps


def test_passes_of_half_the_batch_give_the_gradients_of_one_pass(tmp_path, tiny_cfg, monkeypatch) -> None:
    # Only what couples the images of a batch, or draws random numbers between two latents' draws, differs
    # between passes: minibatch-std groups, one style-mixing draw per pass, the path-length average,
    # StyleGAN2's noise inputs, StyleGAN3's magnitude EMA. Without them (a small StyleGAN3-T, mbstd groups
    # of 1, the EMA held) the passes' mean gradient is the batch's; R1 runs every step, so the G, D and
    # R1 steps are all compared.
    opts = (
        "model=stylegan3_t",
        "loss=stylegan3",
        "model.generator.synthesis_kwargs.channel_base=256",
        "model.generator.synthesis_kwargs.channel_max=16",
        "+model.generator.synthesis_kwargs.num_layers=4",
        "model.magnitude_ema_beta=1",
        "model.discriminator.mbstd_group_size=1",
        "loss.r1_interval=1",
    )
    whole = recorded_gradients(monkeypatch, tiny_cfg, tmp_path / "whole", *opts)
    halves = recorded_gradients(monkeypatch, tiny_cfg, tmp_path / "halves", *opts, "train.batch_gpu=2")
    assert len(whole) == len(halves) == 3
    for phase, (a, b) in enumerate(zip(whole, halves, strict=True)):
        assert a.keys() == b.keys() and a
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-7, msg=f"phase {phase}: {name}")
    assert not all(torch.equal(a[name], b[name]) for a, b in zip(whole, halves, strict=True) for name in a)


def test_a_batch_gpu_that_does_not_tile_the_batch_is_refused_before_anything_is_written(
    tmp_path, tiny_cfg
) -> None:
    with pytest.raises(ConfigError) as err:
        train(tiny_cfg(tmp_path / "run", "train.batch_gpu=3"))
    assert str(err.value) == (
        "train.batch_gpu=3 must divide the 4 images each process trains on per step (train.batch / "
        "processes), or be at least that many."
    )
    assert not (tmp_path / "run").exists()
