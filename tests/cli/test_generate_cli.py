"""studio-generate: PNGs from the G_ema of a checkpoint."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.cli.generate import main

REPO = Path(__file__).resolve().parents[2]


def test_generate_writes_num_seeded_images(tmp_path: Path, checkpoint: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, "-m", "studio.cli.generate", f"ckpt={checkpoint}", f"out={out}", "num=5", "batch=2",
         "seed=10", "truncation=0.7"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"seed{s:08d}.png" for s in range(10, 15)]
    assert np.asarray(Image.open(out / names[0])).shape == (16, 16, 3)
    # Same arguments -> identical files.
    again = tmp_path / "again"
    main([f"ckpt={checkpoint}", f"out={again}", "num=5", "batch=2", "seed=10", "truncation=0.7"])
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes()


def test_generate_reports_missing_arguments() -> None:
    with pytest.raises(SystemExit, match="missing out, num"):
        main(["ckpt=x.ckpt"])
    with pytest.raises(SystemExit, match="unknown argument 'steps=3'"):
        main(["steps=3"])


def test_generate_refuses_a_file_that_is_not_a_studio_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="is not a studio training checkpoint"):
        main([f"ckpt={path}", f"out={tmp_path}", "num=1"])
