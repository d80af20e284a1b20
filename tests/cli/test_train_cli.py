"""studio-train as a user runs it: a subprocess with Hydra overrides."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_run import TINY_RUN

from studio.data.image_folder import ImageFolderDataset

REPO = Path(__file__).resolve().parents[2]
TINY = [*TINY_RUN, "data.dataset.size=64", "eval.every_kimg=0.012", "ckpt.every_kimg=0.012"]


def studio_train(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "studio.cli.train", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_train_writes_a_complete_run_dir_and_resume_auto_continues(tmp_path: Path) -> None:
    run = studio_train(*TINY, f"run_dir={tmp_path}", "train.kimg=0.024")
    assert run.returncode == 0, run.stderr[-3000:]
    # The kimg progress bar, finished: 0.024 kimg of 0.024 (shown with 2 decimals) with the latest losses.
    bar = (
        r"^100%\|█+\| 0\.02/0\.02 kimg \[\d\d:\d\d<00:00, "
        r"G=[^,]+, G_pl=[^,]+, D=[^,]+, D_r1=[^,]+, pl_mean=[^\]]+\]"
    )
    assert re.search(bar, run.stderr, re.MULTILINE), run.stderr[-2000:]  # text mode: tqdm's \r is a \n
    config = (tmp_path / "config.yaml").read_text()
    assert f"run_dir: {tmp_path}" in config and "kimg: 0.024" in config
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.012, 0.024]
    assert {"loss/G", "loss/D", "pl_mean"} <= records[0]["results"].keys()
    assert records[1]["seconds"] > records[0]["seconds"] > 0 and records[1]["sec_per_kimg"] > 0
    samples = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert samples == ["fakes_000000.000.png", "fakes_000000.012.png", "fakes_000000.024.png", "reals.png"]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["kimg-000000.012.ckpt", "kimg-000000.024.ckpt", "last.ckpt"]

    resumed = studio_train(*TINY, f"run_dir={tmp_path}", "train.kimg=0.036", "resume=auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert "Resuming from" in log and "at kimg 0.024" in log
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.012, 0.024, 0.036]
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["progress"]["cur_nimg"] == 36


def test_unknown_key_is_rejected_by_hydra(tmp_path: Path) -> None:
    run = studio_train(f"run_dir={tmp_path}", "train.kimgs=5")
    assert run.returncode == 1
    assert "Could not override 'train.kimgs'" in run.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_cfg_job_prints_the_composed_config(tmp_path: Path) -> None:
    run = studio_train(f"run_dir={tmp_path}", "experiment=stylegan2_cpu32", "--cfg", "job")
    assert run.returncode == 0, run.stderr
    assert "channel_base: 4096" in run.stdout and "gamma: 0.05" in run.stdout


def test_folder_data_without_a_path_is_a_clear_error(tmp_path: Path) -> None:
    run = studio_train(f"run_dir={tmp_path / 'run'}", "data=folder")
    assert run.returncode == 1
    assert (
        "ConfigError: Invalid config:\n  data.path: required, no default; set data.path=/path/to/images "
        "(a folder or a .zip of images)." in run.stdout + run.stderr
    )
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "run").exists()


def test_invalid_values_and_added_keys_are_refused_one_line_each_leaving_no_run_dir(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run = studio_train(*TINY, f"run_dir={run_dir}", "train.kimg=-1", "train.batch=abc", "+train.kimgs=1")
    assert run.returncode == 1
    assert (
        "ConfigError: Invalid config (fix the keys named, see `studio-train --cfg job`):\n"
        "  train.kimg=-1: must be a number > 0.\n"
        "  train.batch=abc: must be an integer >= 1.\n"
        "  train.kimgs: unknown key (valid keys here: kimg, batch, batch_gpu, ema_kimg, ema_rampup, "
        "cpu_threads, channels_last).\n"
    ) in run.stdout + run.stderr
    assert not run_dir.exists()
    # An existing run's folder is never removed, whatever the failure.
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("earlier run\n")
    run = studio_train(*TINY, f"run_dir={run_dir}", "train.kimg=-1")
    assert run.returncode == 1 and (run_dir / "config.yaml").read_text() == "earlier run\n"


def test_a_dataset_error_is_the_dataset_message_alone(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name, (height, width) in {"a.png": (16, 16), "b.png": (16, 16), "c.png": (12, 16)}.items():
        Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(images / name)
    with pytest.raises(ValueError) as expected:
        ImageFolderDataset(images)
    run = studio_train(f"run_dir={tmp_path / 'run'}", "data=folder", f"data.path={images}")
    assert run.returncode == 1
    output = run.stdout + run.stderr
    assert f"ValueError: {expected.value}" in output
    assert "c.png is 16x12" in str(expected.value)
    assert "Error in call to target" not in output and "Traceback" not in output
