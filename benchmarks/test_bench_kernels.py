"""Pytest entry of the kernel benchmark: runs it on a GPU, skips (with the reason) elsewhere.

Self-contained on purpose: it neither needs nor provides fixtures of the benchmark suite.
"""

from __future__ import annotations

import json

import pytest
import torch

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


def test_every_case_builds_its_implementations_on_the_cpu():
    """What a GPU session runs, on one small case per op on the CPU (the Triton implementation
    too where the kernels can run here): each returns the ``[B, C', H, W]`` the model takes."""
    from swintormer.errors import SwintormerError
    from swintormer.layers.backend import check_backend

    try:
        check_backend("triton")
        kernels = True
    except SwintormerError:
        kernels = False
    for op, shift, channels in (("window_attention", 4, 32), ("window_channel_attention", 4, 32), ("swin_attention", 0, 32),
                                ("mdta", 0, 16)):
        case = bench_kernels.Case(op, "swintormer-dpdd", 64, "level1", "float32", 1, channels, 2, 16, 16, 8, shift)
        impls = bench_kernels.implementations(case, device="cpu")
        expected = {"window_attention": channels // 2, "window_channel_attention": channels // 2}.get(op, channels)
        outputs = {name: fn() for name, fn in impls.items() if name != "triton" or kernels}
        assert {tuple(o.shape) for o in outputs.values()} == {(1, expected, 16, 16)}, (op, {k: o.shape for k, o in outputs.items()})
        if "triton" in outputs:
            torch.testing.assert_close(outputs["triton"], outputs["eager"], atol=1e-4, rtol=1e-4)
