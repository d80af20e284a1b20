"""Two CPU processes (gloo) under GANDDPStrategy stay bitwise in sync and share the global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.io.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


# A Projected FastGAN-lite with ADA, in passes of 2 of each rank's 4 images: BatchNorm statistics in G
# and D's heads and ADA's sums must stay equal across ranks too (every checkpoint checks it).
PROJECTED_ADA = [
    "model=projected_fastgan_lite", "loss=projected", "model.generator.ngf=8",
    "model.discriminator.backbone_resolution=32",
    "augment=ada", "augment.interval=2", "augment.speed_kimg=0.1", "train.batch_gpu=2",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("model", [[], PROJECTED_ADA], ids=["stylegan2", "projected_ada"])
def test_two_processes_train_in_sync(tmp_path: Path, tiny_overrides: list[str], model: list[str]) -> None:
    overrides = [o for o in tiny_overrides if not o.startswith("train.batch")]
    if model:  # the tiny StyleGAN2's sizes do not apply
        overrides = [o for o in overrides if not o.startswith(("model.", "loss."))] + model
    cmd = [
        sys.executable, "-m", "studio.cli.train", *overrides, f"run_dir={tmp_path}", "train.batch=8",
        "train.kimg=0.032", "ckpt.every_kimg=0.016", "trainer.devices=2", "eval.every_kimg=0.016",
        "eval.metrics=[fid,pr]", "eval.backbone=random_cnn", "eval.num_gen=16", "eval.num_real=16",
    ]  # fmt: skip
    run = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONPATH=str(REPO))
    )
    # Every checkpoint broadcasts rank 0's weights and raises unless rank 1's are bitwise equal.
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
    assert "Starting with 2 processes" in run.stdout + run.stderr
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert state["progress"] == {"cur_nimg": 32, "step": 4, "batch": 8, "world_size": 2}
    assert len(state["rng"]) == 2  # each rank's RNG state, for an exact resume on 2 processes
    assert not state["rng"][0]["torch"].equal(state["rng"][1]["torch"])  # ranks draw different latents
    # Both processes took half of the evaluation images; rank 0 wrote one line per tick with the metrics.
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.0, 0.016, 0.032]  # 0: the untrained G
    assert all({"fid", "precision", "recall"} <= r["results"].keys() for r in records)
    if model:
        assert 0 < state["loss"]["augment.p"] <= 1 and state["loss"]["augment.count"] == 0
