"""`python -m ops` compiles every CUDA extension (GPU not needed, nvcc is) and reports clearly."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ops import _build

needs_nvcc = pytest.mark.skipif(
    shutil.which("nvcc") is None and not os.environ.get("CUDA_HOME"), reason="needs the CUDA toolkit (nvcc)"
)


def _python_m_ops(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "ops"], capture_output=True, text=True, env=env, timeout=1800, cwd=Path.home()
    )


@pytest.mark.slow
@needs_nvcc
def test_every_extension_compiles_into_a_fresh_cache_then_loads_from_it(tmp_path):
    env = {"STUDIO_CACHE": str(tmp_path)}  # default architectures (8.0;9.0+PTX without a GPU)
    first = _python_m_ops(env)
    assert first.returncode == 0, first.stdout + first.stderr
    for op in _build.EXTENSIONS:
        libraries = list((tmp_path / "torch_extensions").glob(f"studio_{op}_*/studio_{op}_*.so"))
        assert len(libraries) == 1, op
        assert (libraries[0].parent / "build.ok").exists()
        row = next(line for line in first.stdout.splitlines() if line.startswith(op))
        assert row.split()[1] == "yes", row  # compiled now, e.g. "yes (93 s)"
    if not _gpu_visible():
        assert "No CUDA GPU is visible: the kernels were compiled but nothing can run here." in first.stdout
    second = _python_m_ops(env)
    assert second.returncode == 0, second.stdout + second.stderr
    for op in _build.EXTENSIONS:
        assert _status(second, op) == "cached"
    # A truncated binary (a full disk, a killed copy) with its build.ok is rebuilt, not imported or reused.
    library = next((tmp_path / "torch_extensions").glob("studio_bias_act_*/studio_bias_act_*.so"))
    library.write_bytes(library.read_bytes()[:4096])
    third = _python_m_ops(env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert [_status(third, op) for op in _build.EXTENSIONS] == ["yes", "cached", "cached"]


def _status(run: subprocess.CompletedProcess, op: str) -> str:
    """The "compiled" column of `op` in the table of `python -m ops`: yes, cached or FAILED."""
    return next(line for line in run.stdout.splitlines() if line.startswith(op)).split()[1]


def test_missing_toolkit_fails_with_the_fix_and_nonzero_exit(tmp_path):
    result = _python_m_ops({"CUDA_HOME": str(tmp_path / "no-cuda"), "STUDIO_CACHE": str(tmp_path)})
    assert result.returncode == 1
    assert f"CUDA_HOME={tmp_path / 'no-cuda'} has no bin/nvcc" in result.stdout
    assert "install the CUDA toolkit (nvcc)" in result.stdout
    for op in _build.EXTENSIONS:
        assert any(line.startswith(op) and "FAILED" in line for line in result.stdout.splitlines()), op


def _gpu_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def test_a_failed_self_check_on_a_gpu_is_reported_and_fails_the_exit_status(monkeypatch, capsys):
    # Stand-ins for a GPU machine where the kernels build but one disagrees with the reference in float16.
    from ops import __main__ as ops_main

    monkeypatch.setattr(ops_main.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(ops_main.torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(
        ops_main._build, "build", lambda op: _build.BuildResult(None, Path(op), 0.0, cached=True)
    )
    monkeypatch.setattr(ops_main._dispatch, "load_kernel", lambda op: None)

    def self_check(op, kernel, reference, device, dtype):
        return "max error 0.5 > 0.01" if op == "upfirdn2d" and dtype == ops_main.torch.float16 else None

    monkeypatch.setattr(ops_main, "self_check", self_check)
    assert ops_main.main() == 1
    out = capsys.readouterr().out
    assert "upfirdn2d: the kernel disagrees with the reference (float16 FAILED: max error 0.5 > 0.01)" in out
    row = next(line for line in out.splitlines() if line.startswith("bias_act"))
    assert "float32 ok; float16 ok; bfloat16 ok" in row
