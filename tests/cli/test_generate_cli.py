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


def test_help_prints_the_usage(capsys) -> None:
    main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("studio-generate: write PNG samples") and "translate=[X,Y]" in out


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


SG3_TINY = {
    "name": "stylegan3-generator",
    "version": 1,
    "kwargs": {
        "z_dim": 8,
        "c_dim": 0,
        "w_dim": 8,
        "img_resolution": 16,
        "img_channels": 3,
        "synthesis_kwargs": {"channel_base": 256, "channel_max": 16, "num_layers": 4},
    },
}


def _pixels(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), dtype=np.float64) for p in sorted(folder.iterdir())])


def test_translate_and_rotate_move_a_stylegan3_generators_images(tmp_path: Path, checkpoint: Path) -> None:
    from studio.io.checkpoint import CHECKPOINT_FORMAT, build_network, save_checkpoint

    torch.manual_seed(0)
    G = build_network(SG3_TINY)
    sg3 = tmp_path / "sg3.ckpt"
    save_checkpoint(
        {"format": CHECKPOINT_FORMAT, "networks": {"generator": SG3_TINY}, "G_ema": G.state_dict()}, sg3
    )
    runs = {
        "plain": [],
        "still": ["translate=[0,0]", "rotate=0"],
        "turned": ["rotate=360"],
        "right2": ["translate=[0.125,0]"],  # 2 pixels of 16 to the right
    }
    for name, extra in runs.items():
        main([f"ckpt={sg3}", f"out={tmp_path / name}", "num=3", *extra])
    plain = _pixels(tmp_path / "plain")
    assert np.array_equal(plain, _pixels(tmp_path / "still"))
    assert np.abs(plain - _pixels(tmp_path / "turned")).max() <= 1  # one 8-bit step of rounding
    moved = _pixels(tmp_path / "right2")
    # The content moved 2 pixels right: columns 2.. of the moved image are columns ..-2 of the plain one
    # (far better than unmoved), up to aliasing of this untrained network and the 8-bit rounding.
    shifted_error = np.abs(moved[:, :, 4:-2] - plain[:, :, 2:-4]).mean()
    assert shifted_error < 0.25 * np.abs(moved[:, :, 4:-2] - plain[:, :, 4:-2]).mean()
    with pytest.raises(SystemExit, match=r"translate= and rotate= need a generator with an input transform"):
        main([f"ckpt={checkpoint}", f"out={tmp_path / 'sg2'}", "num=1", "rotate=10"])
    with pytest.raises(SystemExit, match=r"translate must be \[X,Y\] in image widths, got '\[1\]'"):
        main([f"ckpt={sg3}", f"out={tmp_path / 'bad'}", "num=1", "translate=[1]"])


def test_generate_reports_bad_numbers_in_one_line() -> None:
    with pytest.raises(SystemExit, match=r"studio-generate: could not convert string to float: 'x'"):
        main(["ckpt=a.ckpt", "out=o", "num=1", "rotate=x"])
