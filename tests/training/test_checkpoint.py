"""Checkpoint files: atomic writes that leave no debris, clear errors for unreadable files, old formats."""

from pathlib import Path

import pytest
import torch

from studio.io.atomic import link_atomic, write_text_atomic
from studio.io.checkpoint import (
    CHECKPOINT_FORMAT,
    build_network,
    load_checkpoint,
    load_generator,
    save_checkpoint,
)


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_failed_save_keeps_the_old_checkpoint_and_removes_the_temporary_file(
    tmp_path, monkeypatch, error
) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "step": torch.arange(10)}, path)
    before = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs) -> None:
        f.write(b"half a checkpoint")
        raise error("interrupted mid-write")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(error, match="interrupted mid-write"):
        save_checkpoint({"format": CHECKPOINT_FORMAT, "step": torch.zeros(100)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["step"], torch.arange(10))


def test_text_and_link_writes_replace_the_target_and_leave_no_temporary_file(tmp_path) -> None:
    write_text_atomic(tmp_path / "a.txt", "old")
    write_text_atomic(tmp_path / "a.txt", "new")
    link_atomic(tmp_path / "a.txt", tmp_path / "b.txt")
    link_atomic(tmp_path / "a.txt", tmp_path / "b.txt")
    assert (tmp_path / "b.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


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


def test_foreign_format_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "other.ckpt"
    torch.save({"format": "someone-else/3"}, path)
    with pytest.raises(ValueError, match=r"not a studio training checkpoint \(format 'someone-else/3', "):
        load_checkpoint(path)


def test_format_1_checkpoints_with_an_import_path_still_load(tmp_path: Path) -> None:
    kwargs = {"z_dim": 8, "w_dim": 8, "img_resolution": 8, "synthesis_kwargs": {"channel_max": 4}}
    G = build_network({"name": "stylegan2-generator", "version": 1, "kwargs": kwargs})
    path = tmp_path / "old.ckpt"
    generator = {"_target_": "models.stylegan2.Generator", **kwargs}
    torch.save({"format": "studio.stylegan2/1", "generator": generator, "G_ema": G.state_dict()}, path)
    loaded = load_generator(path, torch.device("cpu"))
    for name, value in G.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    assert load_checkpoint(path)["networks"]["generator"]["name"] == "stylegan2-generator"
