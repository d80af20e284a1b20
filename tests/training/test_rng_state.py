"""The RNG states a checkpoint saves: CPU, numpy and python round-trip; CUDA only for this process's device,
so that a resume seeing a different set of GPUs (fewer, or one per task) restores without an IndexError."""

import random

import numpy as np
import torch

from studio import runtime


def test_cpu_numpy_python_states_round_trip():
    state = runtime.capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    torch.rand(5), np.random.rand(5), random.random()  # noqa: NPY002
    runtime.restore_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(again[0], expected[0]) and np.array_equal(again[1], expected[1])
    assert again[2] == expected[2]


class FakeCuda:
    """torch.cuda's RNG entry points on a machine with `count` GPUs, this process on `current`."""

    def __init__(self, count: int, current: int):
        self.states = [torch.full((4,), i, dtype=torch.uint8) for i in range(count)]
        self.current = current

    def install(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: self.current)
        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": self.states[self.current])
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set_state)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: list(self.states))

    def set_state(self, state, device="cuda"):
        self.states[self.current] = state


def test_only_this_process_device_is_saved_and_restored(monkeypatch):
    four = FakeCuda(count=4, current=2)
    four.install(monkeypatch)
    state = runtime.capture_rng_state()
    assert [s.tolist() for s in state["cuda"]] == [[2, 2, 2, 2]]
    one = FakeCuda(count=1, current=0)  # resumed where this task sees one GPU
    one.install(monkeypatch)
    runtime.restore_rng_state(state)
    assert one.states[0].tolist() == [2, 2, 2, 2]


def test_checkpoints_that_saved_every_device_restore_the_current_one(monkeypatch):
    saved = FakeCuda(count=4, current=0).states
    state = runtime.capture_rng_state() | {"cuda": saved}
    for count, current, expected in [(4, 3, 3), (1, 0, 0), (8, 6, 0)]:
        machine = FakeCuda(count, current)
        machine.install(monkeypatch)
        runtime.restore_rng_state(state)
        assert machine.states[current].tolist() == [expected] * 4
