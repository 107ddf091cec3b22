"""A roofline estimate of tiles/s on a 2080 Ti-class GPU (the design target; none is here).

From the measured per-tile work (FLOPs, as counted by ``swintormer profile``) and an estimate of
the bytes each tile moves (every layer's input, output and weights read or written once: no
fusion, an upper bound on traffic), the ideal time per tile is ``max(FLOPs / peak, bytes /
bandwidth)``. These are estimates, labelled so, not measurements.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from swintormer.profiling import profile_variant
from swintormer.registry import build_model

#: Published peaks (FLOP/s, bytes/s). RTX 2080 Ti at reference clocks, NVIDIA Turing architecture
#: whitepaper: 13.4 TFLOPS FP32, 53.8 TFLOPS FP16 tensor with FP32 accumulate (GeForce rate), 616 GB/s.
PEAKS = {
    "RTX 2080 Ti (published peak)": {"fp32": 13.4e12, "fp16": 53.8e12, "bandwidth": 616e9},
}


def bytes_per_tile(model: nn.Module, shape: tuple[int, ...], dtype_bytes: int) -> int:
    """Sum over leaf modules of input + output + parameter bytes for one forward (meta device)."""
    meta = copy.deepcopy(model).to("meta")
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        elems = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor)) + output.numel()
        elems += sum(p.numel() for p in module.parameters(recurse=False))
        total += elems * dtype_bytes

    handles = [m.register_forward_hook(hook) for m in meta.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            meta(torch.empty(shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total


def test_roofline_estimate(record):
    estimates = {}
    for name in ("swintormer-tiny", "swintormer-dpdd"):
        model = build_model(name)
        shape = (1, model.config.in_channels, 256, 256)
        flops = 2 * profile_variant(name, 256)["model"].fvcore_macs
        for device, peak in PEAKS.items():
            for precision, nbytes in (("fp32", 4), ("fp16", 2)):
                traffic = bytes_per_tile(model, shape, nbytes)
                t_compute, t_memory = flops / peak[precision], traffic / peak["bandwidth"]
                estimates[f"{device} {name} {precision}"] = {
                    "model": name, "precision": precision, "gflop_per_tile": flops / 1e9, "mbytes_per_tile": traffic / 1e6,
                    "tiles_per_s": 1.0 / max(t_compute, t_memory), "bound": "compute" if t_compute > t_memory else "memory",
                }
    notes = [
        "ESTIMATE, not a measurement: ideal roofline (perfect overlap, 100% of peak); real kernels reach a fraction of it.",
        "traffic counts every layer's input, output and weights once (no fusion), at the precision's element size.",
        "peaks: NVIDIA Turing architecture whitepaper, GeForce RTX 2080 Ti reference (13.4 TFLOPS FP32, "
        "53.8 TFLOPS FP16 tensor with FP32 accumulate, 616 GB/s).",
        "no GPU was available in this session, so no measured fraction of peak is reported; "
        "benchmarks/bench_kernels.py writes one on a GPU.",
    ]
    record("estimate", {"estimates": estimates, "notes": notes})
    # A known answer: swintormer-dpdd in fp32 is compute-bound, 2 x 33.33 GMACs at 13.4 TFLOP/s.
    dpdd = estimates["RTX 2080 Ti (published peak) swintormer-dpdd fp32"]
    assert dpdd["bound"] == "compute" and dpdd["gflop_per_tile"] == pytest.approx(66.66, rel=1e-3)
    assert dpdd["tiles_per_s"] == pytest.approx(13.4e12 / 66.66e9, rel=1e-3)
    for e in estimates.values():  # fp16 halves the bytes: never slower than fp32
        twin = estimates[f"RTX 2080 Ti (published peak) {e['model']} fp32"]
        assert e["tiles_per_s"] >= twin["tiles_per_s"]
