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


def one_line_error(capsys, argv: list[str]) -> str:
    """Run main(argv), expect exit status 2, return its single stderr line."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.rstrip("\n")


def test_generate_refuses_a_file_that_is_not_a_studio_checkpoint(tmp_path: Path, capsys) -> None:
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    assert one_line_error(capsys, [f"ckpt={path}", f"out={tmp_path}", "num=1"]) == (
        f"studio-generate: error: '{path}' is not a studio training checkpoint "
        "(format None, expected 'studio.checkpoint/2')."
    )
    path.write_bytes(b"garbage")
    assert one_line_error(capsys, [f"ckpt={path}", f"out={tmp_path}", "num=1"]) == (
        f"studio-generate: error: Cannot read checkpoint '{path}' (UnpicklingError): the file is "
        "truncated, damaged or not a torch checkpoint; use a checkpoint written by studio-train "
        "(e.g. checkpoints/last.ckpt)."
    )
    assert not list(tmp_path.glob("*.png"))


def test_generate_reports_weights_that_do_not_fit_the_config_in_one_line(
    tmp_path: Path, checkpoint: Path, capsys
) -> None:
    state = torch.load(checkpoint, weights_only=True)
    generator = state["networks"]["generator"]
    generator["kwargs"] = dict(generator["kwargs"], w_dim=16)
    torch.save(state, checkpoint)
    message = one_line_error(capsys, [f"ckpt={checkpoint}", f"out={tmp_path / 'out'}", "num=1"])
    assert message.startswith("studio-generate: error: Error(s) in loading state_dict for Generator: ")
    assert "size mismatch" in message
    assert not (tmp_path / "out").exists()


def test_generate_with_a_missing_checkpoint_prints_one_line_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ckpt"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, "-m", "studio.cli.generate", f"ckpt={missing}", f"out={tmp_path}", "num=1"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr == f"studio-generate: error: Checkpoint '{missing}' does not exist.\n"
