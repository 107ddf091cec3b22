"""Pytest entry of the kernel benchmark: runs it on a GPU, skips (with the reason) elsewhere.

Self-contained on purpose: it neither needs nor provides fixtures of the benchmark suite.
"""

from __future__ import annotations

import json

import pytest

import bench_kernels
import recording

#: Max |kernel - eager| sanity bounds: a broken kernel fails, precision is tests/kernels' job.
#: The fp16 eager reference itself rounds q, k after normalising, so it is the looser one.
SANITY = {"float32": 1e-4, "float16": 5e-2}


@pytest.mark.gpu
@pytest.mark.skipif(not bench_kernels.gpu_available(), reason=bench_kernels.NEEDS_GPU)
def test_bench_kernels():
    recording.run_dir().mkdir(parents=True, exist_ok=True)
    path = bench_kernels.run([256, 512], ["float16", "float32"], batch=8, out=recording.run_dir(),
                             command="python -m pytest benchmarks/test_bench_kernels.py")  # fmt: skip
    report = json.loads(path.read_text())
    assert report["device"] and report["git_revision"] and report["peaks"]["dram_gbps"] > 0
    assert len(report["results"]) == len(bench_kernels.build_cases([256, 512], ["float16", "float32"], 8))
    for row in report["results"]:
        assert all(ms > 0 for ms in row["ms"].values()), row
        assert row["max_abs_err_vs_eager"] <= SANITY[row["dtype"]], row
