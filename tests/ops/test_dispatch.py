"""impl selection, build-failure and self-check fallbacks, toolkit discovery and the build cache (CPU only).

A "GPU" is simulated by making the dispatcher treat CPU tensors as GPU tensors and by replacing the kernel
loader, so the whole auto path (load, self-check, warn once, fall back) runs without CUDA.
"""

import errno
import os
import stat
import types
import warnings
from pathlib import Path

import pytest
import torch

import ops
from ops import _build, _dispatch, _self_check
from ops._self_check import self_check

OP_CALLS = {
    "bias_act": lambda impl: ops.bias_act(_x(), torch.ones(3), act="lrelu", impl=impl),
    "upfirdn2d": lambda impl: ops.upfirdn2d(_x(), torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8, up=2, impl=impl),
    "filtered_lrelu": lambda impl: ops.filtered_lrelu(
        _x(), torch.tensor([1.0, 2.0, 1.0]) / 4, None, torch.ones(3), up=2, padding=1, impl=impl
    ),
}


def _x() -> torch.Tensor:
    return torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))


def _install_kernel(monkeypatch, make_kernel) -> list[str]:
    """Make `make_kernel(op)` the loaded kernel of every op; returns the list of ops loaded so far."""
    loads = []

    def load(op):
        loads.append(op)
        return make_kernel(op)

    monkeypatch.setattr(_dispatch, "_load", load)
    return loads


def _run_twice(op: str, impl: str = "auto") -> tuple[list[torch.Tensor], list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs = [OP_CALLS[op](impl) for _ in range(2)]
    return outputs, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_impl_must_be_known():
    with pytest.raises(ValueError, match=r"impl must be one of \('auto', 'cuda', 'ref'\), got 'gpu'"):
        _dispatch.cuda_impl("bias_act", "gpu", torch.zeros(1))


def test_cpu_tensors_use_the_reference_and_cuda_demands_a_gpu_tensor():
    x = torch.zeros(1, 1, 2, 2)
    assert _dispatch.cuda_impl("upfirdn2d", "auto", x) is None
    assert _dispatch.cuda_impl("upfirdn2d", "ref", x) is None
    with pytest.raises(ValueError, match="upfirdn2d: impl='cuda' needs a CUDA tensor, got one on cpu"):
        _dispatch.cuda_impl("upfirdn2d", "cuda", x)


def _self_check_calls(op: str) -> int:
    """Kernel calls of one self-check: one per case (filtered_lrelu checks each of its kernel paths)."""
    return len(_self_check._cases(op, torch.Generator()))


@pytest.mark.parametrize("op", sorted(OP_CALLS))
def test_wrong_kernel_falls_back_with_exactly_one_warning(op, fake_gpu, monkeypatch):
    calls = []

    def make_wrong(name):
        def wrong(**kwargs):
            calls.append(name)
            return _dispatch.reference(name)(**kwargs) * 1.05  # 5 % off: far beyond the fp32 tolerance

        return wrong

    _install_kernel(monkeypatch, make_wrong)
    outputs, warned = _run_twice(op)
    expected = OP_CALLS[op]("ref")
    for y in outputs:
        torch.testing.assert_close(y, expected, rtol=0, atol=0)
    assert len(warned) == 1
    assert f"ops.{op}: the CUDA kernel disagrees with the reference for torch.float32" in str(
        warned[0].message
    )
    assert "output error 5.00e-02" in str(warned[0].message)
    assert calls == [op] * _self_check_calls(op)  # used by the self-check only, never for real work
    assert _dispatch._checked == {(op, torch.float32): False}


@pytest.mark.parametrize("op", sorted(OP_CALLS))
def test_correct_kernel_is_used_after_one_silent_self_check(op, fake_gpu, monkeypatch):
    calls = []

    def make_right(name):
        def right(**kwargs):
            calls.append(name)
            return _dispatch.reference(name)(**kwargs)

        return right

    _install_kernel(monkeypatch, make_right)
    outputs, warned = _run_twice(op)
    assert warned == []
    assert calls == [op] * (_self_check_calls(op) + 2)  # the self-check, then both real calls
    torch.testing.assert_close(outputs[0], OP_CALLS[op]("ref"), rtol=0, atol=0)


def test_crashing_kernel_counts_as_a_failed_self_check(fake_gpu, monkeypatch):
    def crash(**kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    _install_kernel(monkeypatch, lambda op: crash)
    _, warned = _run_twice("bias_act")
    assert len(warned) == 1
    assert "it raised RuntimeError: CUDA error: an illegal memory access" in str(warned[0].message)


def test_build_failure_warns_once_and_cuda_raises(fake_gpu, monkeypatch):
    def fail(op):
        raise _build.BuildError(
            "building the bias_act extension failed:\nfatal error: cuda_runtime.h: No such file"
        )

    loads = _install_kernel(monkeypatch, fail)
    outputs, warned = _run_twice("bias_act")
    torch.testing.assert_close(outputs[0], OP_CALLS["bias_act"]("ref"), rtol=0, atol=0)
    assert len(warned) == 1
    message = str(warned[0].message)
    assert message.startswith("ops.bias_act: the CUDA kernel is unavailable; using the reference.")
    assert "fatal error: cuda_runtime.h" in message
    assert loads == ["bias_act"]  # the failure is remembered for the process
    with pytest.raises(RuntimeError, match="impl='cuda' but the CUDA kernel is unavailable"):
        OP_CALLS["bias_act"]("cuda")


def test_unsupported_dtype_uses_the_reference_without_loading(fake_gpu, monkeypatch):
    loads = _install_kernel(monkeypatch, lambda op: pytest.fail("must not load"))
    x = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    assert _dispatch.cuda_impl("bias_act", "auto", x) is None
    with pytest.raises(ValueError, match="bias_act: the CUDA kernel supports"):
        _dispatch.cuda_impl("bias_act", "cuda", x)
    assert loads == []


def test_self_check_leaves_the_global_rng_alone():
    before = torch.random.get_rng_state()
    assert self_check("upfirdn2d", ops.upfirdn2d_ref, ops.upfirdn2d_ref, "cpu", torch.float32) is None
    assert torch.equal(before, torch.random.get_rng_state())


def test_self_check_runs_under_no_grad_and_inference_mode():
    with torch.inference_mode():
        assert self_check("bias_act", ops.bias_act_ref, ops.bias_act_ref, "cpu", torch.float32) is None


def _fake_toolkit(tmp_path, monkeypatch):
    """A toolkit under tmp_path/cuda-x and an `nvcc` wrapper script elsewhere on PATH that execs it."""
    home = tmp_path / "cuda-x"
    (home / "bin").mkdir(parents=True)
    (home / "include").mkdir()
    (home / "include" / "cuda_runtime.h").write_text("")
    wrapper_dir = tmp_path / "wrappers"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "nvcc"
    wrapper.write_text(f'#!/bin/sh\necho "#$ TOP={home}/bin/.." >&2\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("PATH", f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}")
    _build.cuda_home.cache_clear()
    return home


def test_cuda_home_follows_an_nvcc_wrapper_to_the_real_toolkit(tmp_path, monkeypatch):
    home = _fake_toolkit(tmp_path, monkeypatch)
    try:
        assert _build.cuda_home() == home.resolve()
    finally:
        _build.cuda_home.cache_clear()


def test_cuda_home_env_wins_and_is_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    _build.cuda_home.cache_clear()
    try:
        with pytest.raises(_build.BuildError, match=f"CUDA_HOME={tmp_path} has no bin/nvcc"):
            _build.cuda_home()
    finally:
        _build.cuda_home.cache_clear()


def test_arch_list_default_and_override(monkeypatch):
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _build.arch_list() == "8.0;9.0+PTX"  # PTX: GPUs newer than H100 compile it at load time
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: [(9, 0), (8, 6), (9, 0)][i])
    assert _build.arch_list() == "8.6;9.0"  # the visible GPUs
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.6")
    assert _build.arch_list() == "8.6"


def test_build_key_depends_on_architectures_and_toolkit(monkeypatch):
    monkeypatch.setattr(_build, "nvcc_version", lambda: "13.0")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0")
    key = _build.build_key("bias_act")
    assert key == _build.build_key("bias_act")
    assert key != _build.build_key("upfirdn2d")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")
    assert key != _build.build_key("bias_act")
    monkeypatch.setattr(_build, "nvcc_version", lambda: "12.8")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0")
    assert key != _build.build_key("bias_act")


def test_build_key_follows_the_python_abi_not_its_patch_release(monkeypatch):
    """A build made by benchmarks/gpu_prebuild.sh under Python 3.12.1 serves the GPU machine's 3.12.3."""
    monkeypatch.setattr(_build, "nvcc_version", lambda: "13.0")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")

    def key_under(major: int, minor: int, micro: int) -> str:
        version = types.SimpleNamespace(major=major, minor=minor, micro=micro)
        monkeypatch.setattr(_build, "sys", types.SimpleNamespace(version_info=version))
        return _build.build_key("filtered_lrelu")

    assert key_under(3, 12, 1) == key_under(3, 12, 3) != key_under(3, 11, 7)


def test_build_uses_the_cache_dir_clears_a_stale_torch_baton_and_marks_success(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr(_build, "nvcc_version", lambda: "13.0")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0")
    monkeypatch.setattr(_build, "_loaded", {})
    build_dir = tmp_path / "torch_extensions" / f"studio_bias_act_{_build.build_key('bias_act')}"
    build_dir.mkdir(parents=True)
    (build_dir / "lock").write_text("")  # left behind by a build that was killed

    monkeypatch.setattr(_build, "_compile", _fake_compile(build_dir))
    result = _build.build("bias_act")
    assert not result.cached and (build_dir / "build.ok").exists()
    assert _build.build("bias_act") is result  # remembered in-process


def _cached_build_dir(tmp_path, monkeypatch, op: str) -> Path:
    """The build directory `op` gets in a cache under tmp_path (toolkit and architectures pinned)."""
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr(_build, "nvcc_version", lambda: "13.0")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0")
    monkeypatch.setattr(_build, "_loaded", {})
    return tmp_path / "torch_extensions" / f"studio_{op}_{_build.build_key(op)}"


def _fake_compile(expected_dir: Path, empty: bool = False):
    """A stand-in for _compile that writes a (fake) library; checks the directory it is given."""

    def fake_compile(name, module_name, directory, with_cuda):
        assert directory == expected_dir and not (directory / "lock").exists()
        assert not empty or not list(directory.iterdir())
        (directory / f"{module_name}.so").write_bytes(b"\x7fELF compiled")
        return types.ModuleType(module_name)

    return fake_compile


@pytest.mark.parametrize("damage", ["truncated", "unimportable"])
def test_damaged_cached_library_is_rebuilt_in_an_emptied_directory(damage, tmp_path, monkeypatch):
    build_dir = _cached_build_dir(tmp_path, monkeypatch, "bias_act")
    build_dir.mkdir(parents=True)
    library = build_dir / f"{build_dir.name}.so"
    library.write_bytes(b"\x7fELF" + bytes(8192))
    (build_dir / "build.ok").write_text(_build._fingerprint(library))
    if damage == "truncated":  # e.g. by a full disk; importing it could crash the process with SIGBUS
        library.write_bytes(b"\x7fELF" + bytes(4092))
    (build_dir / "bias_act.cuda.o").write_bytes(b"")  # ninja would take such leftovers for up to date
    monkeypatch.setattr(_build, "_compile", _fake_compile(build_dir, empty=True))
    result = _build.build("bias_act")
    assert not result.cached
    assert (build_dir / "build.ok").read_text().strip() == _build._fingerprint(library)


def test_cache_without_file_locks_says_so(tmp_path, monkeypatch):
    _cached_build_dir(tmp_path, monkeypatch, "upfirdn2d")

    def no_flock(path):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(_build.filelock, "FileLock", no_flock)
    with pytest.raises(_build.BuildError, match="on a filesystem that supports file locks \\(flock"):
        _build.build("upfirdn2d")


def test_failed_build_is_not_marked_done(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr(_build, "nvcc_version", lambda: "13.0")
    monkeypatch.setattr(_build, "_loaded", {})

    def failing_compile(name, module_name, directory, with_cuda):
        raise _build.BuildError("nvcc fatal : Unsupported gpu architecture 'compute_20'")

    monkeypatch.setattr(_build, "_compile", failing_compile)
    with pytest.raises(_build.BuildError, match="Unsupported gpu architecture"):
        _build.build("upfirdn2d")
    assert not list(tmp_path.rglob("build.ok"))


def test_compiler_summary_keeps_the_error_lines():
    log = "\n".join(
        ["[1/2] nvcc -c a.cu", "a.cu(3): error: identifier x is undefined", "note: " * 5, "ninja: stop"]
    )
    assert _build.compiler_summary(log) == "a.cu(3): error: identifier x is undefined"


def test_the_kernels_in_use_check_of_the_cuda_tests_sees_what_ran(
    fake_gpu, monkeypatch, assert_cuda_kernels_in_use
):
    # The fixture the fp16 `cuda` tests end with: it must fail for an op that fell back to the reference.
    _install_kernel(monkeypatch, lambda op: _dispatch.reference(op))
    monkeypatch.setattr(_dispatch, "_checked", {("upfirdn2d", torch.float32): False})  # self-check failed
    OP_CALLS["bias_act"]("auto")
    OP_CALLS["upfirdn2d"]("auto")  # on the reference
    assert_cuda_kernels_in_use(("bias_act",), (torch.float32,))
    with pytest.raises(AssertionError, match=r"ran on the reference, not the CUDA kernel: \[\('upfirdn2d', "):
        assert_cuda_kernels_in_use(("bias_act", "upfirdn2d"), (torch.float32,))
    with pytest.raises(AssertionError, match="'bias_act', torch.float16"):
        assert_cuda_kernels_in_use(("bias_act",), (torch.float16,))
