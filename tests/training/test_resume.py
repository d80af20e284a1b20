"""Exact resume, checkpoint contents, and the NaN stop that leaves the last good checkpoint intact."""

import json
import logging
import math
import os
import signal

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from studio.data.shapes import ShapesDataset
from studio.io.checkpoint import build_network, load_checkpoint
from studio.training.config_check import ConfigError
from studio.training.loss import StyleGAN2Loss
from studio.training.module import TrainingDiverged
from studio.training.run import train


def assert_states_equal(a: dict, b: dict, where: str = "") -> None:
    """Bitwise equality of nested checkpoint content."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_states_equal(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_states_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("num_workers", [0, 1])
def test_interrupted_and_resumed_run_is_bitwise_identical(tmp_path, tiny_cfg, num_workers) -> None:
    # 8 steps straight vs 4 steps + resume=auto for 4 more (R1 at steps 0, 3, 6; path length at 0, 2, 4, 6).
    # With a worker process the data stream must continue exactly too (sampler position, worker seeding).
    opts = ("ckpt.every_kimg=100", f"data.num_workers={num_workers}")
    straight = tmp_path / "straight"
    train(tiny_cfg(straight, "train.kimg=0.032", *opts))
    split = tmp_path / "split"
    first = train(tiny_cfg(split, "train.kimg=0.016", *opts))
    assert first.cur_nimg == 16 and first.num_steps == 4
    resumed = train(tiny_cfg(split, "train.kimg=0.032", *opts, "resume=auto"))
    assert resumed.cur_nimg == 32 and resumed.num_steps == 8

    a = load_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = load_checkpoint(split / "checkpoints" / "last.ckpt")
    assert a["progress"] == b["progress"] == {"cur_nimg": 32, "step": 8, "batch": 4, "world_size": 1}
    for key in ("G_ema", "G", "D", "loss", "opt_G", "opt_D", "rng"):
        assert_states_equal(a[key], b[key], key)
    assert a["loss"]["pl_mean"] > 0  # the path-length regularizer ran


def test_checkpoint_holds_the_complete_state(tmp_path, tiny_cfg) -> None:
    train(tiny_cfg(tmp_path, "train.kimg=0.008", "ckpt.every_kimg=0.004"))
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["kimg-000000.004.ckpt", "kimg-000000.008.ckpt", "last.ckpt"]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert set(state) == {
        "format", "G", "D", "G_ema", "loss", "opt_G", "opt_D", "progress", "rng", "stats", "networks",
        "config", "run",
    }  # fmt: skip
    assert state["run"] == {
        "seed": 0, "dataset_length": 64, "dataset_fingerprint": ShapesDataset(16, size=64).fingerprint()
    }  # fmt: skip
    assert set(state["rng"][0]) == {"torch", "cuda", "numpy", "python"}
    networks = state["networks"]
    assert {name: (spec["name"], spec["version"]) for name, spec in networks.items()} == {
        "generator": ("stylegan2-generator", 1),
        "discriminator": ("stylegan2-discriminator", 1),
    }
    assert networks["generator"]["kwargs"]["img_resolution"] == 16
    assert "_target_" not in networks["generator"]["kwargs"]
    # The specs rebuild the networks without Hydra: same architecture as the saved weights.
    assert build_network(networks["generator"]).load_state_dict(state["G_ema"])
    assert build_network(networks["discriminator"]).load_state_dict(state["D"])
    # Lazy-regularization adjusted Adam: G's lr = 0.0025 * 4/5 (pl_interval 2 -> r = 2/3 here).
    assert state["opt_G"]["param_groups"][0]["lr"] == pytest.approx(0.0025 * 2 / 3, rel=1e-12)
    assert state["opt_D"]["param_groups"][0]["betas"][1] == pytest.approx(0.99 ** (3 / 4), rel=1e-12)


def test_resume_refuses_restored_settings_warns_on_used_ones_and_records_only_used_values(
    tmp_path, tiny_cfg, caplog
) -> None:
    train(tiny_cfg(tmp_path, "train.kimg=0.004"))
    recorded = (tmp_path / "config.yaml").read_text()
    lr = OmegaConf.create(recorded).optimizer.generator.lr
    with pytest.raises(ConfigError) as refused:
        train(
            tiny_cfg(
                tmp_path, "train.kimg=0.008", "optimizer.generator.lr=1e6", "train.batch=8", "resume=auto"
            )
        )
    assert str(refused.value) == (
        "Cannot resume with these settings changed: the checkpoint restores them, so the new values would "
        "not be used. Set them back to the checkpoint's values (drop your overrides, or pass those values) "
        "to continue the run, or start a new run in another run_dir:\n"
        f"  optimizer.generator.lr=1000000.0 (checkpoint: {lr})\n  train.batch=8 (checkpoint: 4)"
    )
    assert (tmp_path / "config.yaml").read_text() == recorded  # the refused values were never recorded

    caplog.set_level(logging.WARNING, logger="studio.training.resume_rules")
    train(
        tiny_cfg(
            tmp_path, "train.kimg=0.008", "eval.every_kimg=0.002", "ckpt.every_kimg=0.002", "resume=auto"
        )
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []  # length, evaluation and checkpoint cadence are free to change
    train(tiny_cfg(tmp_path, "train.kimg=0.012", "loss.gamma=0.5", "resume=auto"))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "resume: loss.gamma changed from 0.05 to 0.5; the new value is used from kimg 0.008 on, so this run "
        "differs from an uninterrupted one."
    ]
    assert OmegaConf.create((tmp_path / "config.yaml").read_text()).loss.gamma == 0.5
    assert OmegaConf.create(load_checkpoint(tmp_path / "checkpoints/last.ckpt")["config"]).loss.gamma == 0.5


def test_a_checkpoint_of_an_earlier_studio_resumes_without_changes(tmp_path, tiny_cfg, caplog) -> None:
    # Its config predates model.discriminator.mbstd_group_size (then model.mbstd_group_size),
    # loss.objective (then always logistic) and train.batch_gpu (then one pass).
    train(tiny_cfg(tmp_path, "train.kimg=0.004"))
    path = tmp_path / "checkpoints" / "last.ckpt"
    state = load_checkpoint(path)
    config = OmegaConf.create(state["config"])
    config.model.mbstd_group_size = config.model.discriminator.pop("mbstd_group_size")
    config.loss.pop("objective")
    config.train.pop("batch_gpu")
    state["config"] = OmegaConf.to_yaml(config)
    torch.save(state, path)
    caplog.set_level(logging.WARNING, logger="studio.training.resume_rules")
    assert train(tiny_cfg(tmp_path, "train.kimg=0.008", "resume=auto")).cur_nimg == 8
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_resume_warns_when_the_seed_or_the_dataset_differ(tmp_path, tiny_cfg, caplog) -> None:
    train(tiny_cfg(tmp_path, "train.kimg=0.004"))
    caplog.set_level(logging.WARNING, logger="studio.training.run")
    train(tiny_cfg(tmp_path, "train.kimg=0.008", "resume=auto"))
    assert [r for r in caplog.records if r.name == "studio.training.run"] == []

    train(tiny_cfg(tmp_path, "train.kimg=0.012", "resume=auto", "seed=1"))
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "studio.training.run"]
    assert warning == (
        "seed=1 differs from the checkpoint's seed=0: the random state continues from the checkpoint, but "
        "the data order and the sample/metric latents change, so this is not an exact continuation."
    )
    caplog.clear()
    train(tiny_cfg(tmp_path, "train.kimg=0.016", "resume=auto", "seed=1", "data.dataset.size=32"))
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "studio.training.run"]
    old, new = ShapesDataset(16, size=64).fingerprint(), ShapesDataset(16, size=32).fingerprint()
    assert warning == (
        f"The dataset differs from the checkpoint's (32 images, fingerprint {new}; the checkpoint's: 64 "
        f"images, {old}): the data order is not an exact continuation."
    )
    assert "\n" not in warning


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, tiny_cfg, monkeypatch) -> None:
    real_generator_loss = StyleGAN2Loss.generator_loss
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        loss = real_generator_loss(self, *args, **kwargs)
        return loss * math.nan if calls["n"] == 3 else loss

    monkeypatch.setattr(StyleGAN2Loss, "generator_loss", poisoned)
    with pytest.raises(
        TrainingDiverged,
        match=r"^loss/G = nan at kimg 0\.008 \(step 2\): training diverged .* Resume \(resume=auto\) "
        r"with a larger loss\.gamma, or start a new run with a lower learning rate: a resume restores the "
        r"optimizer state \(learning rate included\) and the random state, so with unchanged settings it "
        r"diverges again, whatever seed is set\.$",
    ):
        train(tiny_cfg(tmp_path, "train.kimg=0.02", "ckpt.every_kimg=0.004"))
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert state["progress"]["cur_nimg"] == 8  # written after step 2, before the poisoned step 3
    assert all(torch.isfinite(t).all() for t in state["G"].values())
    assert not (tmp_path / "checkpoints" / "kimg-000000.012.ckpt").exists()


class InfiniteGradientsAt(L.Callback):
    """Turns the gradient of G's first parameter into +-inf and NaN (0 * inf) during step `step`, as an
    fp16 overflow in a backward pass would, while every loss stays finite."""

    def __init__(self, step: int) -> None:
        self.step, self.handle = step, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.num_steps == self.step:
            param = next(pl_module.G.parameters()).requires_grad_(True)  # the G phase sets it anyway
            self.handle = param.register_hook(lambda grad: grad * math.inf)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def test_non_finite_gradients_with_a_finite_loss_do_not_end_the_run(tmp_path, tiny_cfg, monkeypatch) -> None:
    module = train(tiny_cfg(tmp_path / "kept", "train.kimg=0.02"), extra_callbacks=[InfiniteGradientsAt(2)])
    assert module.num_steps == 5
    assert all(torch.isfinite(p).all() for p in module.G.parameters())
    # Without the NaN/inf replacement Adam writes NaN into G, and the step's next phase diverges.
    monkeypatch.setattr("studio.training.module.finite_gradients_", lambda net: None)
    with pytest.raises(TrainingDiverged, match=r"^loss/G_pl = nan, .* at kimg 0\.008 \(step 2\)"):
        train(tiny_cfg(tmp_path / "raw", "train.kimg=0.02"), extra_callbacks=[InfiniteGradientsAt(2)])


class InterruptAfter(L.Callback):
    """Sends this process a SIGINT at the end of step `step` (as a user's Ctrl-C)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.num_steps == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_after_the_step_with_a_checkpoint(tmp_path, tiny_cfg) -> None:
    caller_handler = signal.getsignal(signal.SIGINT)  # SIG_IGN in a background job of a script
    module = train(
        tiny_cfg(tmp_path, "train.kimg=0.04", "ckpt.every_kimg=100"), extra_callbacks=[InterruptAfter(2)]
    )
    # The signal arrives after step 2's checkpoint check; step 3 finishes, is saved, and training ends.
    assert module.num_steps == 3 and not module.done
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["progress"]["cur_nimg"] == 12
    assert signal.getsignal(signal.SIGINT) is caller_handler


def test_a_resume_after_a_mid_tick_stop_logs_the_same_tick_line(tmp_path, tiny_cfg) -> None:
    """The running loss means are in the checkpoint: the tick after a Ctrl-C + resume averages the
    same steps as an uninterrupted run, and a line a killed run wrote past its checkpoint is dropped."""
    opts = ("train.kimg=0.032", "eval.every_kimg=0.016", "ckpt.every_kimg=100")
    train(tiny_cfg(tmp_path / "straight", *opts))
    split = tmp_path / "split"
    train(tiny_cfg(split, *opts), extra_callbacks=[InterruptAfter(1)])  # stops after step 2 of 4
    with open(split / "metrics.jsonl", "a") as log:  # as if killed after a line, before its checkpoint
        log.write(json.dumps({"kimg": 0.016, "results": {}}) + "\n")
    (split / "checkpoints" / ".last.ckpt.x1y2.tmp").write_bytes(b"half a checkpoint")
    (split / ".metrics.jsonl.z3w4.tmp").write_text("half a rewrite")
    train(tiny_cfg(split, *opts, "resume=auto"))

    def lines(run_dir):
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    straight, resumed = lines(tmp_path / "straight"), lines(split)
    assert [line["kimg"] for line in resumed] == [line["kimg"] for line in straight] == [0.016, 0.032]
    for a, b in zip(straight, resumed, strict=True):
        assert a["results"] == b["results"]
    assert {"loss/G", "loss/G_pl", "loss/D", "loss/D_r1", "pl_mean"} <= set(resumed[0]["results"])
    assert sorted(p.name for p in (split / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not list(split.glob(".*.tmp"))


def test_csv_rows_are_on_disk_at_every_tick(tmp_path, tiny_cfg) -> None:
    class ReadCsvAtTicks(L.Callback):
        rows: list[int] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if pl_module.num_steps % 2 == 0:  # a tick every 2 steps (0.008 kimg)
                (csv,) = (tmp_path / "csv").rglob("metrics.csv")
                self.rows.append(sum("progress/kimg" not in line for line in csv.read_text().splitlines()))

    probe = ReadCsvAtTicks()
    train(
        tiny_cfg(tmp_path, "train.kimg=0.024", "eval.every_kimg=0.008", "logger=csv"), extra_callbacks=[probe]
    )
    assert probe.rows == [1, 2, 3]


def test_a_fresh_start_over_an_existing_run_is_refused(tmp_path, tiny_cfg) -> None:
    train(tiny_cfg(tmp_path, "train.kimg=0.004"))
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(
        ValueError, match=r"already holds a run \(checkpoints/last.ckpt\)\. Continue it with resume=auto"
    ):
        train(tiny_cfg(tmp_path, "train.kimg=0.004"))  # e.g. a requeued job without resume=auto
    assert (tmp_path / "metrics.jsonl").read_text() == before


def test_an_argument_added_on_resume_that_the_checkpoint_restores_is_refused(tmp_path, tiny_cfg) -> None:
    train(tiny_cfg(tmp_path, "train.kimg=0.004"))
    with pytest.raises(
        ConfigError, match=r"optimizer.generator.weight_decay=0.01 \(checkpoint: \(not set\)\)"
    ):
        train(tiny_cfg(tmp_path, "train.kimg=0.008", "+optimizer.generator.weight_decay=0.01", "resume=auto"))


def test_the_best_restarts_when_the_evaluation_is_measured_differently(tmp_path) -> None:
    from studio.training.monitor import BestMonitor

    old = BestMonitor("fid", "min", {"backbone": "random_cnn", "num_gen": 1000})
    old.update({"fid": 0.5}, 4000)
    same = BestMonitor("fid", "min", {"backbone": "random_cnn", "num_gen": 1000})
    same.load_state_dict(old.state_dict())
    assert same.summary() == {"metric": "fid", "mode": "min", "value": 0.5, "kimg": 4.0}
    other = BestMonitor("fid", "min", {"backbone": "inception", "num_gen": 50000})
    other.load_state_dict(old.state_dict())
    assert other.value is None and other.update({"fid": 30.0}, 8000)  # not compared with 0.5


def test_stylegan3_r_trains_and_resumes_bitwise_with_the_d_blur_fading_mid_run(tmp_path, tiny_cfg) -> None:
    # A small StyleGAN3-R (4 layers, 16 channels) with the blur of D's inputs fading out at step 6 of 8,
    # trained in passes of 2 images as its 256² preset trains in passes (of 8).
    opts = (
        "model=stylegan3_r",
        "loss=stylegan3",
        "loss.blur_init_sigma=2",
        "loss.blur_fade_kimg=0.024",
        "model.generator.synthesis_kwargs.channel_base=256",
        "model.generator.synthesis_kwargs.channel_max=16",
        "+model.generator.synthesis_kwargs.num_layers=4",
        "train.batch_gpu=2",
        "ckpt.every_kimg=100",
    )
    straight = tmp_path / "straight"
    train(tiny_cfg(straight, "train.kimg=0.032", *opts))
    split = tmp_path / "split"
    train(tiny_cfg(split, "train.kimg=0.016", *opts))
    train(tiny_cfg(split, "train.kimg=0.032", *opts, "resume=auto"))
    a = load_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = load_checkpoint(split / "checkpoints" / "last.ckpt")
    assert a["networks"]["generator"]["name"] == "stylegan3-generator"
    for key in ("G_ema", "G", "D", "loss", "opt_G", "opt_D", "rng"):
        assert_states_equal(a[key], b[key], key)
    magnitudes = [value for name, value in a["G"].items() if name.endswith("magnitude_ema")]
    assert len(magnitudes) == 5 and all(value != 1 for value in magnitudes)  # 4 layers + ToRGB updated
    G = build_network(a["networks"]["generator"])
    G.load_state_dict(a["G_ema"])
    assert torch.isfinite(G(torch.randn(2, G.z_dim), None)).all()


def test_an_optimizer_whose_regularizer_is_off_keeps_the_configured_lr_and_betas(tmp_path, tiny_cfg) -> None:
    train(tiny_cfg(tmp_path, "train.kimg=0.004", "loss.pl_weight=0", "loss.gamma=0"))
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    for opt, lr in (("opt_G", 0.0025), ("opt_D", 0.002)):
        group = state[opt]["param_groups"][0]
        assert (group["lr"], tuple(group["betas"])) == (lr, (0.0, 0.99)), opt
