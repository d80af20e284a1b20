"""SIGKILL at random moments, inside checkpoint writes and inside evaluations: nothing is lost.

A run killed and resumed (resume=auto) over and over must end bitwise equal to an uninterrupted one, with
every file loadable, one metrics.jsonl line per tick and every CSV row of the uninterrupted run."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_run import TINY_RUN

from studio.callbacks import MetricsLog
from studio.io.checkpoint import load_checkpoint

HARNESS = Path(__file__).with_name("killed_train.py")
REPO = Path(__file__).resolve().parents[2]
# 192 steps of 4 images; a tick (loss means, FID on a random CNN, a CSV row) and a checkpoint every 4 steps.
# About 20 s of training after about 4 s of start-up on a 2-core CPU, which the random kills sample.
RUN = [
    *TINY_RUN,
    "data.dataset.size=64",
    "train.cpu_threads=1",
    "loss.r1_interval=3",
    "loss.pl_interval=2",
    "train.kimg=0.768",
    "eval.every_kimg=0.016",
    "ckpt.every_kimg=0.016",
    "eval.metrics=[fid]",
    "eval.backbone=random_cnn",
    "eval.num_gen=16",
    "eval.num_real=16",
    "eval.monitor=fid",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
STATE_KEYS = ("G", "D", "G_ema", "opt_G", "opt_D", "loss", "progress", "rng", "stats", "best")
TIMING = ("seconds", "sec_per_kimg", "eval_seconds")


def launch(run_dir: Path, mode: str = "none", n: int = 0) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = [sys.executable, str(HARNESS), mode, str(n), *RUN, f"run_dir={run_dir}", "resume=auto"]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def assert_equal(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def ticks(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted((run_dir / "csv").glob("version_*/metrics.csv")):
        with open(path, newline="") as f:
            rows += [
                {k: v for k, v in row.items() if v and not k.startswith("timing/")}
                for row in csv.DictReader(f)
            ]
    return rows


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_the_uninterrupted_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = launch(straight)
    assert done.wait(timeout=600) == 0, done.stderr.read()[-3000:]

    kills = {"checkpoint": 0, "evaluation": 0, "timer": 0}
    rng = random.Random(0)
    for mode, n in [
        ("checkpoint", 2),
        ("evaluation", 2),
        ("checkpoint", 1),
        ("evaluation", 1),
        *[("none", 0)] * 4,
    ]:
        process = launch(killed, mode, n)
        if mode == "none":
            time.sleep(rng.uniform(3.0, 7.0))
            process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=600)
        if code == -signal.SIGKILL:
            kills["timer" if mode == "none" else mode] += 1
        else:  # the run may finish first; nothing left to kill
            assert code == 0, process.stderr.read()[-3000:]
    assert kills["checkpoint"] == 2 and kills["evaluation"] == 2 and kills["timer"] >= 2, kills
    final = launch(killed)
    assert final.wait(timeout=600) == 0, final.stderr.read()[-3000:]

    expected = load_checkpoint(straight / "checkpoints" / "last.ckpt")
    state = load_checkpoint(killed / "checkpoints" / "last.ckpt")
    for key in STATE_KEYS:
        assert_equal(state[key], expected[key], key)
    # best.ckpt: the same best state (kills during evaluations and checkpoint writes left it intact)
    best, expected_best = (load_checkpoint(d / "checkpoints" / "best.ckpt") for d in (killed, straight))
    for key in STATE_KEYS:
        assert_equal(best[key], expected_best[key], f"best.{key}")
    # Every file loads; no temporary is left behind.
    for path in (killed / "checkpoints").glob("*.ckpt"):
        load_checkpoint(path)
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == sorted(
        p.name for p in (straight / "checkpoints").iterdir()
    )
    for path in (killed / "samples").glob("*.png"):
        Image.open(path).load()
    assert not [p for p in killed.rglob("*.tmp")]
    # One metrics.jsonl line per tick, with the uninterrupted run's values (loss means and FID).
    assert ticks(killed) == ticks(straight)
    assert len(ticks(straight)) == 49  # kimg 0 (the untrained G) and 48 ticks
    # Every CSV row of the uninterrupted run is on disk; a killed segment may hold a row its resume
    # wrote again, never a different value.
    rows = csv_rows(killed)
    for row in csv_rows(straight):
        assert row in rows
    assert {json.dumps(row, sort_keys=True) for row in rows} == {
        json.dumps(row, sort_keys=True) for row in csv_rows(straight)
    }


def test_lines_past_the_checkpoint_and_a_cut_line_are_dropped(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    whole = [json.dumps({"kimg": kimg, "results": {}}) + "\n" for kimg in (0.016, 0.032)]
    path.write_text("".join(whole) + '{"kimg": 0.048, "resu')  # killed in the middle of a write
    log = MetricsLog(path, every_kimg=0.016)
    log.drop_records_after(32)
    assert path.read_text() == "".join(whole)
    log.drop_records_after(0)  # killed before the first checkpoint: resume=auto starts afresh
    assert path.read_text() == ""
