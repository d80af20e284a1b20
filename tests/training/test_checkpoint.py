"""Checkpoint files: atomic writes that leave no debris, clear errors for unreadable files."""

from pathlib import Path

import pytest
import torch

from studio.training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_atomic


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_failed_save_keeps_the_old_checkpoint_and_removes_the_temporary_file(
    tmp_path, monkeypatch, error
) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    save_atomic({"format": CHECKPOINT_FORMAT, "step": torch.arange(10)}, path)
    before = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs) -> None:
        f.write(b"half a checkpoint")
        raise error("interrupted mid-write")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(error, match="interrupted mid-write"):
        save_atomic({"format": CHECKPOINT_FORMAT, "step": torch.zeros(100)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["step"], torch.arange(10))


def test_unreadable_checkpoint_is_a_one_line_value_error(tmp_path: Path) -> None:
    full = tmp_path / "full.ckpt"
    torch.save({"format": CHECKPOINT_FORMAT, "x": torch.zeros(1000)}, full)
    files = {
        "truncated.ckpt": ("RuntimeError", full.read_bytes()[: full.stat().st_size // 2]),
        "text.ckpt": ("UnpicklingError", b"not a checkpoint at all"),
        "empty.ckpt": ("EOFError", b""),
    }
    for name, (kind, content) in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError) as info:
            load_checkpoint(path)
        assert str(info.value) == (
            f"Cannot read checkpoint '{path}' ({kind}): the file is truncated, damaged or not a torch "
            "checkpoint; use a checkpoint written by studio-train (e.g. checkpoints/last.ckpt)."
        )
