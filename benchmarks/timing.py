"""Timing helpers shared by the speed benchmarks."""

from __future__ import annotations

import time
from typing import Callable, Mapping

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


def interleaved(fns: Mapping[str, Callable[[], object]], rounds: int, settle: int = 1) -> dict[str, list[float]]:
    """Wall-clock seconds of one call of each of ``fns`` per round, ``rounds`` rounds, every call
    after ``settle`` untimed calls of the same function.

    Interleaving lets every function see the same machine; the untimed calls keep one runtime's
    idle threads out of the next one's timing: ONNX Runtime's workers spin for a while after a run
    and took cores from the session timed next (2-core EPYC, the default model per tile: fp32
    57-63 ms interleaved plainly, 40-52 ms with a settling call, 41-43 ms timed alone).
    """
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            out[key] += latencies(fn, 1, warmup=settle)
    return out


def summary(times: list[float], megapixels: float) -> dict:
    """p50/p95 latency and throughput of repeated runs over ``megapixels`` each."""
    arr = np.asarray(times)
    return {"p50_s": float(np.percentile(arr, 50)), "p95_s": float(np.percentile(arr, 95)), "runs": len(times),
            "megapixels_per_s": megapixels * len(times) / float(arr.sum())}
