"""Dashboard loggers: the scalars each one receives, and what a resumed run keeps."""

import csv
import re
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from studio.training.run import train

# 4 steps of 4 images with an evaluation tick every 2 steps: two rows of scalars per segment.
SHORT = ("train.kimg=0.016", "eval.every_kimg=0.008", "ckpt.every_kimg=100")
SCALARS = {"loss/G", "loss/G_pl", "loss/D", "loss/D_r1", "pl_mean", "progress/kimg", "timing/sec_per_kimg"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tensorboard_and_csv_receive_the_training_scalars(tmp_path, tiny_cfg) -> None:
    train(tiny_cfg(tmp_path, *SHORT, "logger=[tensorboard,csv]"))

    rows = read_csv(tmp_path / "csv" / "version_0" / "metrics.csv")
    assert SCALARS | {"step"} <= rows[0].keys()
    assert [int(r["step"]) for r in rows] == [8, 16]  # images shown
    assert [float(r["progress/kimg"]) for r in rows] == [0.008, 0.016]
    assert all(float(r["loss/D"]) > 0 and float(r["timing/sec_per_kimg"]) > 0 for r in rows)

    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert set(accumulator.Tags()["scalars"]) >= SCALARS
    assert [e.step for e in accumulator.Scalars("loss/G")] == [8, 16]
    assert [e.value for e in accumulator.Scalars("progress/kimg")] == pytest.approx([0.008, 0.016])

    # The resolved config is logged once as hyperparameters.
    for logger_dir in (tmp_path / "csv" / "version_0", tmp_path / "tensorboard"):
        hparams = yaml.safe_load((logger_dir / "hparams.yaml").read_text())
        assert hparams["train"]["kimg"] == 0.016 and hparams["run_dir"] == str(tmp_path)


def test_csv_rows_of_every_resumed_segment_are_kept(tmp_path, tiny_cfg) -> None:
    train(tiny_cfg(tmp_path, *SHORT, "logger=csv"))
    train(tiny_cfg(tmp_path, "train.kimg=0.032", *SHORT[1:], "logger=csv", "resume=auto"))
    segments = sorted((tmp_path / "csv").iterdir())
    assert [p.name for p in segments] == ["version_0", "version_1"]
    steps = [[int(r["step"]) for r in read_csv(p / "metrics.csv")] for p in segments]
    assert steps == [[8, 16], [24, 32]]


def test_wandb_offline_writes_a_local_run_and_resume_continues_its_id(
    tmp_path, tiny_cfg, wandb_offline
) -> None:
    wandb = wandb_offline
    run_dir = tmp_path / "run"
    try:
        train(tiny_cfg(run_dir, *SHORT, "logger=wandb", "logger.offline=true"))
        assert wandb.run.config["train"]["kimg"] == 0.016  # the resolved config as hyperparameters
        wandb.finish()
        run_id = (run_dir / "wandb_id.txt").read_text().strip()
        assert len(run_id) == 16 and run_id.isalnum() and run_id.islower()
        train(
            tiny_cfg(
                run_dir, "train.kimg=0.032", *SHORT[1:], "logger=wandb", "logger.offline=true", "resume=auto"
            )
        )
        wandb.finish()
    finally:
        wandb.finish()
    assert (run_dir / "wandb_id.txt").read_text().strip() == run_id
    offline_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    # wandb suffixes "-1" when both segments start within the same second.
    run_dir_name = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?")
    assert len(offline_runs) == 2 and all(run_dir_name.fullmatch(p.name) for p in offline_runs)
    for offline_run in offline_runs:
        assert (offline_run / f"run-{run_id}.wandb").stat().st_size > 0
