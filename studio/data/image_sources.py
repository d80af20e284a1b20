"""Where image files come from: a directory tree or a .zip archive, behind one small interface.

Both list image files in a sorted, deterministic order as relative '/'-separated names, open them as
binary streams, and describe their content cheaply for fingerprints. Hidden entries (names starting
with '.') and macOS '__MACOSX/' zip folders are skipped.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

from studio.data.image_io import is_image_name


def _is_hidden(relative_name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in relative_name.split("/"))


class FolderSource:
    """Image files found recursively under a directory."""

    kind = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root

    def list_images(self) -> list[str]:
        names = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for filename in filenames:
                rel = filename if rel_dir == "." else f"{rel_dir}/{filename}"
                if is_image_name(filename) and not _is_hidden(rel):
                    names.append(rel)
        return sorted(names)

    def open(self, name: str) -> BinaryIO:
        return open(self.root / name, "rb")

    def open_header(self, name: str) -> BinaryIO:
        return self.open(name)

    def read_root_file(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None

    def content_entries(self, names: list[str]) -> list[str]:
        """One line per file: relative path, size in bytes, modification time in ns."""
        entries = []
        for name in names:
            st = os.stat(self.root / name)
            entries.append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}")
        return entries

    def describe(self, name: str) -> str:
        return str(self.root / name)


class ZipSource:
    """Image members of a .zip archive. The ZipFile handle is opened lazily once per process, so the
    source can be pickled into DataLoader workers (or forked) and each worker reads on its own handle."""

    kind = "zip"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"] = None
        state["_zip_pid"] = None
        return state

    def list_images(self) -> list[str]:
        names = [
            info.filename
            for info in self._archive().infolist()
            if not info.is_dir() and is_image_name(info.filename) and not _is_hidden(info.filename)
        ]
        return sorted(names)

    def open(self, name: str) -> BinaryIO:
        # Read the whole member: decoders seek, and seeking a compressed ZipExtFile re-decompresses.
        return io.BytesIO(self._archive().read(name))

    def open_header(self, name: str) -> BinaryIO:
        return self._archive().open(name)

    def read_root_file(self, name: str) -> bytes | None:
        try:
            return self._archive().read(name)
        except KeyError:
            return None

    def content_entries(self, names: list[str]) -> list[str]:
        """One line per member, from the zip directory (no decompression): name, CRC32, size."""
        archive = self._archive()
        entries = []
        for name in names:
            info = archive.getinfo(name)
            entries.append(f"{name}\0{info.CRC:08x}\0{info.file_size}")
        return entries

    def describe(self, name: str) -> str:
        return f"{self.path}:{name}"


def open_source(path: str | os.PathLike) -> FolderSource | ZipSource:
    """FolderSource for a directory, ZipSource for a .zip file; clear errors for anything else."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(
            f"Dataset path '{resolved}' does not exist. Set data.path to a folder of images or a .zip "
            "of images."
        )
    if resolved.is_dir():
        return FolderSource(resolved)
    if not zipfile.is_zipfile(resolved):
        raise ValueError(
            f"Dataset path '{resolved}' is a file but not a zip archive. Set data.path to a folder of "
            "images or a .zip of images."
        )
    return ZipSource(resolved)
