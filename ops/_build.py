"""JIT build of the CUDA extensions: locating the toolkit, a shared on-disk cache, and a cross-process lock.

Each op is its own extension (`ops/csrc/<op>.cu`), so one failing to compile does not block the others.
Build directories live under `$STUDIO_CACHE/torch_extensions` (default `~/.cache/studio/torch_extensions`)
and are keyed by a hash of the sources, the torch and CUDA versions and the target architectures, so a
changed source or toolkit never reuses a stale binary. A file lock per build directory serialises
concurrent processes (DDP ranks); processes arriving after a finished build import the cached `.so`
directly without running ninja.
"""

import functools
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import filelock
import torch

from ops.environment import cache_dir

CSRC = Path(__file__).parent / "csrc"
EXTENSIONS = ("bias_act", "upfirdn2d", "filtered_lrelu")
HEADERS = ("common.cuh", "bias_act.cuh", "upfirdn2d.cuh", "filtered_lrelu.cuh", "launch.h", "prepare.h")
COMPILE_FLAGS = ["-O3"]  # for the host compiler and nvcc alike
# Used when no GPU is visible and TORCH_CUDA_ARCH_LIST is unset: A100 and H100 binaries, plus PTX that the
# driver of a newer GPU compiles just in time.
DEFAULT_ARCH_LIST = "8.0;9.0+PTX"
BUILD_HINT = (
    "To use the CUDA kernels install the CUDA toolkit (nvcc) matching torch.version.cuda, ninja "
    "(`pip install ninja`) and a host C++ compiler (g++), or point CUDA_HOME at the toolkit; "
    "`python -m ops` shows what builds and runs here."
)


class BuildError(RuntimeError):
    """A CUDA extension could not be compiled or loaded; the message holds the compiler output."""


@dataclass(frozen=True)
class BuildResult:
    module: ModuleType
    library: Path  # the compiled .so
    seconds: float  # wall time of compile + load (near 0 when cached)
    cached: bool


def cache_root() -> Path:
    """`$STUDIO_CACHE/torch_extensions`, default `~/.cache/studio/torch_extensions`."""
    return cache_dir("torch_extensions")


@functools.cache
def cuda_home() -> Path:
    """The CUDA toolkit root: `CUDA_HOME` / `CUDA_PATH` if set, else where `nvcc` really lives.

    `nvcc` on PATH may be a symlink or a wrapper script (e.g. /usr/local/bin/nvcc exec'ing
    /usr/local/cuda-13.0/bin/nvcc), so the toolkit root is read from nvcc's own `--dryrun` report (`TOP=`).
    """
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            home = Path(os.environ[var])
            if not (home / "bin" / "nvcc").exists():
                raise BuildError(f"{var}={home} has no bin/nvcc. {BUILD_HINT}")
            return home
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise BuildError(f"nvcc was not found on PATH and CUDA_HOME is not set. {BUILD_HINT}")
    try:
        dry = subprocess.run(
            [nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
            capture_output=True,
            text=True,
            timeout=60,
        )
        top = re.search(r"^#\$ TOP=(.+)$", dry.stdout + dry.stderr, re.MULTILINE)
    except (OSError, subprocess.TimeoutExpired):
        top = None
    home = Path(top.group(1).strip()).resolve() if top else Path(nvcc).resolve().parent.parent
    if not (home / "include" / "cuda_runtime.h").exists():
        raise BuildError(
            f"nvcc at {nvcc} resolves to {home}, which lacks include/cuda_runtime.h. {BUILD_HINT}"
        )
    return home


@functools.cache
def nvcc_version() -> str:
    """`release X.Y` of the toolkit in use (part of the cache key)."""
    out = subprocess.run([str(cuda_home() / "bin" / "nvcc"), "--version"], capture_output=True, text=True)
    match = re.search(r"release ([\d.]+)", out.stdout)
    return match.group(1) if match else out.stdout.strip()


def arch_list() -> str:
    """Target architectures: TORCH_CUDA_ARCH_LIST, else the visible GPUs, else DEFAULT_ARCH_LIST."""
    if os.environ.get("TORCH_CUDA_ARCH_LIST"):
        return os.environ["TORCH_CUDA_ARCH_LIST"]
    if torch.cuda.is_available():
        caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
        return ";".join(f"{major}.{minor}" for major, minor in sorted(caps))
    return DEFAULT_ARCH_LIST


def _sources(name: str, with_cuda: bool) -> list[Path]:
    """Host-side binding <name>.cpp, plus the kernels <name>.cu when building for CUDA."""
    return [CSRC / f"{name}.cpp"] + ([CSRC / f"{name}.cu"] if with_cuda else [])


def build_key(name: str, with_cuda: bool = True) -> str:
    """Hash of what makes a compiled binary: sources, headers, flags, torch, Python, CUDA, architectures."""
    digest = hashlib.sha256()
    for path in _sources(name, with_cuda) + [CSRC / h for h in HEADERS]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    # Python by major.minor: its C ABI is stable across patch releases, so a build made for 3.12.1 is
    # reused under 3.12.3 (benchmarks/gpu_prebuild.sh relies on it).
    parts = [torch.__version__, f"{sys.version_info.major}.{sys.version_info.minor}", *COMPILE_FLAGS]
    if with_cuda:
        parts += [str(torch.version.cuda), nvcc_version(), arch_list()]
    digest.update("|".join(parts).encode())
    return digest.hexdigest()[:16]


def compiler_summary(log: str, max_lines: int = 12) -> str:
    """The first error lines of a compiler log (the full log repeats them with pages of notes)."""
    lines = log.splitlines()
    pattern = re.compile(r"\berror\b|fatal|not found|No such file", re.IGNORECASE)
    errors = [line for line in lines if pattern.search(line)]
    return "\n".join((errors or lines[-max_lines:])[:max_lines])


def _import_library(module_name: str, library: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, library)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(name: str, module_name: str, build_dir: Path, with_cuda: bool) -> ModuleType:
    # Importing cpp_extension logs its own CUDA_HOME guess ('/usr/local' on wrapper-nvcc machines), which we
    # replace below; silence it rather than show users a path that is not used.
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        logger.setLevel(level)

    env_before = {k: os.environ.get(k) for k in ("CUDA_HOME", "TORCH_CUDA_ARCH_LIST")}
    home_before = cpp_extension.CUDA_HOME
    try:
        if with_cuda:
            # cpp_extension reads its module-level CUDA_HOME (guessed at import) when writing the ninja file.
            home = str(cuda_home())
            cpp_extension.CUDA_HOME = home
            os.environ["CUDA_HOME"] = home
            os.environ["TORCH_CUDA_ARCH_LIST"] = arch_list()
        return cpp_extension.load(
            name=module_name,
            sources=[str(p) for p in _sources(name, with_cuda)],
            extra_include_paths=[str(CSRC)],
            extra_cflags=COMPILE_FLAGS,
            extra_cuda_cflags=COMPILE_FLAGS,
            build_directory=str(build_dir),
            with_cuda=with_cuda,
            verbose=False,
        )
    except Exception as err:  # compiler errors surface as RuntimeError / OSError / subprocess errors
        summary = compiler_summary(str(err))
        raise BuildError(f"building the {name} extension failed:\n{summary}\n{BUILD_HINT}") from err
    finally:
        cpp_extension.CUDA_HOME = home_before
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_loaded: dict[tuple[str, bool], BuildResult] = {}


def _fingerprint(library: Path) -> str:
    """Size and SHA-256 of a compiled library, as recorded in build.ok."""
    return f"{library.stat().st_size} {hashlib.sha256(library.read_bytes()).hexdigest()}"


def _import_or_compile(
    name: str, module_name: str, build_dir: Path, with_cuda: bool
) -> tuple[ModuleType, bool]:
    """(module, cached). Call with the build directory's lock held."""
    library = build_dir / f"{module_name}.so"
    done = build_dir / "build.ok"  # written only after a complete, importable build: the .so's fingerprint
    if done.exists() and library.exists():
        # A truncated .so (full disk, killed copy) can kill the process on import (SIGBUS) instead of raising
        # ImportError, so its fingerprint is checked first.
        if done.read_text().strip() == _fingerprint(library):
            try:
                return _import_library(module_name, library), True
            except ImportError:
                pass
        # Damaged: rebuild from scratch, since ninja would take a truncated .so for up to date.
        shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
    # We hold the lock, so a torch baton left by a killed build is stale; it would block forever.
    (build_dir / "lock").unlink(missing_ok=True)
    module = _compile(name, module_name, build_dir, with_cuda)
    done.write_text(_fingerprint(library) + "\n")
    return module, False


def build(name: str, with_cuda: bool = True) -> BuildResult:
    """Compile (or reuse the cached build of) extension `name` and import it. Raises BuildError.

    with_cuda=False builds `csrc/<name>.cpp` with the host compiler only (the CPU test harness).
    """
    if (name, with_cuda) in _loaded:
        return _loaded[(name, with_cuda)]
    start = time.perf_counter()
    try:
        key = build_key(name, with_cuda)
    except (OSError, subprocess.SubprocessError) as err:
        raise BuildError(f"cannot inspect the toolchain for {name}: {err}\n{BUILD_HINT}") from err
    module_name = f"studio_{name}_{key}"
    build_dir = cache_root() / module_name
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(build_dir) + ".lock"):
            module, cached = _import_or_compile(name, module_name, build_dir, with_cuda)
    except (OSError, NotImplementedError) as err:  # filelock raises either where flock is unsupported
        raise BuildError(
            f"cannot use the build cache {build_dir}: {err}. Point STUDIO_CACHE at a writable directory on a "
            "filesystem that supports file locks (flock; some network filesystems do not), e.g. local disk."
        ) from err
    result = BuildResult(module, build_dir / f"{module_name}.so", time.perf_counter() - start, cached)
    _loaded[(name, with_cuda)] = result
    return result
