"""`python -m ops`: build every CUDA extension and report what works on this machine.

Prints the toolchain in use and one row per extension: compiled (and how long it took), importable, runs
on the GPU, agrees with the reference (self-check per dtype). Without a GPU it still compiles, for
TORCH_CUDA_ARCH_LIST (default 8.0;9.0+PTX), and says that nothing can run here.
Exit status: 0 when every extension compiled and, on a GPU, agreed with its reference; 1 otherwise.
"""

import sys

import torch

from ops import _build, _dispatch
from ops._self_check import TOLERANCE, self_check


def _toolchain() -> list[str]:
    try:
        cuda = f"{_build.cuda_home()} (nvcc {_build.nvcc_version()})"
    except _build.BuildError as err:
        cuda = f"not found: {err}"
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return [
        f"torch {torch.__version__} (CUDA {torch.version.cuda})",
        f"CUDA toolkit: {cuda}",
        f"target architectures: {_build.arch_list()}",
        f"build cache: {_build.cache_root()}",
        f"GPUs: {', '.join(gpus) if gpus else 'none visible'}",
    ]


def _row(op: str, gpu: bool) -> tuple[list[str], str | None]:
    """Table cells for `op` and what went wrong: its build error or failed self-checks (None: all well)."""
    try:
        result = _build.build(op)
    except _build.BuildError as err:
        return [op, "FAILED", "-", "-", "-"], str(err)
    built = "cached" if result.cached else f"yes ({result.seconds:.0f} s)"
    if not gpu:
        return [op, built, "yes", "no GPU", "-"], None
    kernel = _dispatch.load_kernel(op)
    checks = []
    for dtype in TOLERANCE:
        mismatch = self_check(op, kernel, _dispatch.reference(op), "cuda", dtype)
        checks.append(
            f"{str(dtype).removeprefix('torch.')} {'ok' if mismatch is None else 'FAILED: ' + mismatch}"
        )
    runs = "no" if any("raised" in c for c in checks) else "yes"
    failed = [check for check in checks if "FAILED" in check]
    problem = f"{op}: the kernel disagrees with the reference ({'; '.join(failed)})" if failed else None
    return [op, built, "yes", runs, "; ".join(checks)], problem


def main() -> int:
    gpu = torch.cuda.is_available()
    print("\n".join(_toolchain()))
    header = ["extension", "compiled", "loads", "runs", "self-check vs reference"]
    rows, errors = [], []
    for op in _build.EXTENSIONS:
        print(f"building {op} ...", flush=True)
        row, error = _row(op, gpu)
        rows.append(row)
        if error is not None:
            errors.append(error)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    if not gpu:
        print("No CUDA GPU is visible: the kernels were compiled but nothing can run here.")
    for error in errors:
        print(f"\n{error}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
