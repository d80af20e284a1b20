"""train.batch_gpu: the batch of each process runs in passes of that many images, gradients added up."""

import pytest
import torch

import studio.training.module as module_file
from studio.training.config_check import ConfigError
from studio.training.loss import StyleGAN2Loss
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


def recorded_gradients(monkeypatch, tiny_cfg, run_dir, *overrides) -> tuple[list[dict], dict[str, float]]:
    """The gradients of every optimizer step (after the passes and the all-reduce) of a one-step run, and
    the losses it logged."""
    steps = []

    def record(net: torch.nn.Module) -> None:
        steps.append({name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None})
        finite_gradients_(net)

    monkeypatch.setattr(module_file, "finite_gradients_", record)
    module = train(tiny_cfg(run_dir, "train.kimg=0.004", *overrides))
    return steps, module.last_losses


def test_passes_of_half_the_batch_give_the_gradients_of_one_pass(tmp_path, tiny_cfg, monkeypatch) -> None:
    # What couples the images of a pass, or draws random numbers inside it, differs between passes:
    # minibatch-std groups, one style-mixing draw per pass, the path-length average, StyleGAN2's noise
    # inputs, StyleGAN3's magnitude EMA. Without them (a small StyleGAN3-T, mbstd groups of 1, the EMA
    # held) the passes' mean gradient is the batch's; R1 runs every step, so the G, D and R1 steps are all
    # compared, and so are the logged losses (means over the passes).
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
    whole, whole_losses = recorded_gradients(monkeypatch, tiny_cfg, tmp_path / "whole", *opts)
    halves, halves_losses = recorded_gradients(
        monkeypatch, tiny_cfg, tmp_path / "halves", *opts, "train.batch_gpu=2"
    )
    assert len(whole) == len(halves) == 3
    for phase, (a, b) in enumerate(zip(whole, halves, strict=True)):
        assert a.keys() == b.keys() and a
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-7, msg=f"phase {phase}: {name}")
    assert not all(torch.equal(a[name], b[name]) for a, b in zip(whole, halves, strict=True) for name in a)
    assert halves_losses.keys() == whole_losses.keys() >= {"loss/G", "loss/D", "loss/D_r1"}
    for name, value in whole_losses.items():
        assert halves_losses[name] == pytest.approx(value, rel=1e-6), name


def test_every_phase_sees_passes_of_batch_gpu_images_with_their_labels(
    tmp_path, tiny_cfg, monkeypatch
) -> None:
    # Labelled data, every regularizer in the step: each network call gets one pass's images, latents and
    # labels (path length: half a pass, loss.pl_batch_shrink=2).
    seen = []

    def discriminate(self, discriminator, images, c):
        seen.append(("D", images.shape[0], c.shape[0]))
        return original_discriminate(self, discriminator, images, c)

    def mapping(self, generator, z, c, update_emas=False):
        seen.append(("G", z.shape[0], c.shape[0]))
        return original_mapping(self, generator, z, c, update_emas)

    original_discriminate, original_mapping = StyleGAN2Loss.discriminate, StyleGAN2Loss.mapping
    monkeypatch.setattr(StyleGAN2Loss, "discriminate", discriminate)
    monkeypatch.setattr(StyleGAN2Loss, "mapping", mapping)
    opts = ("data=shapes_labeled", "loss.pl_interval=1", "loss.r1_interval=1", "loss.style_mixing=0")
    train(tiny_cfg(tmp_path, "train.kimg=0.004", "train.batch_gpu=2", *opts))
    g_step = [("G", 2, 2), ("D", 2, 2)]
    path_length = [("G", 1, 1)]
    d_step = [("G", 2, 2), ("D", 2, 2), ("D", 2, 2)]  # G(z) under no_grad, D(fake), D(real)
    r1 = [("D", 2, 2)]
    assert seen == g_step * 2 + path_length * 2 + d_step * 2 + r1 * 2  # two passes each


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
    with pytest.raises(ConfigError) as err:  # passes of 6 cannot form minibatch-std groups of 4
        train(
            tiny_cfg(
                tmp_path / "run",
                "train.batch=12",
                "train.batch_gpu=6",
                "model.discriminator.mbstd_group_size=4",
            )
        )
    assert str(err.value) == (
        "model.discriminator.mbstd_group_size=4 must divide the 6 images of each forward pass (train.batch / "
        "processes, or train.batch_gpu when smaller), or be at least that many."
    )
    assert not (tmp_path / "run").exists()
