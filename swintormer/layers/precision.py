"""fp32 islands: where reduced-precision graphs compute in float32 anyway.

The norms, the L2 normalisations and the softmaxes call :func:`fp32` on their inputs, a no-op for
float32 tensors (so fp32 graphs and the upstream parity are untouched) and an upcast for fp16. The
islands can be switched off with :func:`fp32_islands` to measure what they buy (the export
benchmark does), never in production.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["fp32", "fp32_islands"]

_ENABLED = True


def fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32 inside an island (unchanged when islands are switched off)."""
    return x.float() if _ENABLED else x


@contextlib.contextmanager
def fp32_islands(enabled: bool) -> Iterator[None]:
    """Temporarily switch the fp32 islands on or off (for measurements)."""
    global _ENABLED
    saved, _ENABLED = _ENABLED, enabled
    try:
        yield
    finally:
        _ENABLED = saved
