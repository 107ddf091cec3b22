"""Timing helpers shared by the speed benchmarks."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def latencies(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def summary(times: list[float], megapixels: float) -> dict:
    """p50/p95 latency and throughput of repeated runs over ``megapixels`` each."""
    arr = np.asarray(times)
    return {"p50_s": float(np.percentile(arr, 50)), "p95_s": float(np.percentile(arr, 95)), "runs": len(times),
            "megapixels_per_s": megapixels * len(times) / float(arr.sum())}
