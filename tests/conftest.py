"""Shared test fixtures: the upstream checkpoints, real photographs, tiny checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from photos import photo

FIXTURES = Path(__file__).resolve().parent / "fixtures"
UPSTREAM = FIXTURES / "upstream"

torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
# Commands under test compute with torch unless a test picks a backend: `auto` would export graphs
# (a minute each) for every model and tiling the command-line tests use. tests/test_backends.py
# tests `auto` itself.
os.environ.setdefault("SWINTORMER_BACKEND", "torch")


@pytest.fixture(scope="session", autouse=True)
def artifact_cache(tmp_path_factory) -> Path:
    """A fresh artifact cache for the session: tests never reuse a user's exported graphs."""
    root = tmp_path_factory.mktemp("swintormer-cache")
    old = os.environ.get("SWINTORMER_CACHE")
    os.environ["SWINTORMER_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("SWINTORMER_CACHE", None)
    else:
        os.environ["SWINTORMER_CACHE"] = old


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of small tensors: extra threads only add overhead there, and
    OpenMP threads spin badly when other jobs share the CPU (100x slower on a shared 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def upstream_dir() -> Path:
    return UPSTREAM


@pytest.fixture(scope="session")
def rocket() -> np.ndarray:
    """427x640 real photo: an odd size, not a multiple of any tile."""
    return photo("rocket")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A swintormer-tiny checkpoint in our format, seeded random weights."""
    from swintormer.checkpoint import save_checkpoint
    from swintormer.registry import build_model

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, {"restorer": build_model("swintormer-tiny")}, {"model": "swintormer-tiny"})
    return path
