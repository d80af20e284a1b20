"""Shared pytest setup: `cuda` tests skip on machines without a CUDA device; a check that the CUDA
kernels are in use; an offline wandb."""

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def assert_cuda_kernels_in_use(monkeypatch):
    """assert_cuda_kernels_in_use(ops, dtypes): during this test, each op was dispatched to its CUDA
    kernel for each dtype (it built and passed its self-check), so the model on the GPU ran the kernel
    rather than falling back (silently, but for a warning) to the reference under impl="auto"."""
    from ops import _dispatch

    dispatched: set[tuple[str, torch.dtype]] = set()
    choose = _dispatch.cuda_impl

    def recording(op: str, impl: str, x: torch.Tensor):
        kernel = choose(op, impl, x)
        if kernel is not None:
            dispatched.add((op, x.dtype))
        return kernel

    monkeypatch.setattr(_dispatch, "cuda_impl", recording)

    def check(ops: tuple[str, ...], dtypes: tuple[torch.dtype, ...]) -> None:
        missing = [(op, dtype) for op in ops for dtype in dtypes if (op, dtype) not in dispatched]
        assert not missing, f"ran on the reference, not the CUDA kernel: {missing}"

    return check


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """wandb in offline mode, with every folder it writes (and $HOME) inside tmp_path: nothing may reach
    the network or the user's home. Yields the wandb module and finishes any run afterwards."""
    wandb = pytest.importorskip("wandb")
    for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "HOME"):
        monkeypatch.setenv(name, str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    try:
        yield wandb
    finally:
        wandb.finish()
