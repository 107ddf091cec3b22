"""Kernel tests run on a GPU when there is one, else on the CPU under Triton's interpreter.

``TRITON_INTERPRET`` must be set before the kernel modules are imported (``triton.jit`` decides
at decoration time), so it is set here, when pytest loads this directory.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
