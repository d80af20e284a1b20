"""Atomic file writes: a reader (or a resumed run after a kill) sees the old file or the new one, never
a partial one. Used for checkpoints, the feature cache, downloaded weights and run files."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A fresh temporary name in `path`'s folder (same file system, so the rename is atomic) for the
    block to fill; renamed over `path` when the block ends without error, removed on any exception
    (Ctrl-C included), leaving `path` untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` when the block ends without error; its data are on disk
    (fsync) before the rename."""
    with _replacing(Path(path)) as temporary, open(temporary, "wb") as file:
        yield file
        file.flush()
        os.fsync(file.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """`Path.write_text` (UTF-8), atomically."""
    with atomic_write(path) as file:
        file.write(text.encode())


def link_atomic(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make `path` a hard link to (where links are unsupported, a copy of) `source`, atomically."""
    path = Path(path)
    if path.exists() and os.path.samefile(source, path):
        return  # renaming a link over another link of the same file would do nothing, leaving the temporary
    with _replacing(path) as temporary:
        temporary.unlink()
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (`.<name>.<random>.tmp`) that a killed writer left in `folder`; only
    call it when nothing writes there (e.g. at the start of a resumed run). Returns what was removed."""
    stale = sorted(Path(folder).glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
