"""Fixtures of the ops tests."""

import pytest

from ops import _dispatch


@pytest.fixture
def fake_gpu(monkeypatch):
    """CPU tensors count as GPU tensors; loaded kernels, checks and warnings start empty."""
    monkeypatch.setattr(_dispatch, "_on_gpu", lambda x: True)
    monkeypatch.setattr(_dispatch, "_kernels", {})
    monkeypatch.setattr(_dispatch, "_checked", {})
    monkeypatch.setattr(_dispatch, "_warned", set())
