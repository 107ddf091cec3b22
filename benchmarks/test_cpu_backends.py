"""The CPU backends side by side: per tile, and a 1680x1120 photo against its fp32 roofline floor.

Per 256x256 tile (batch 8, interleaved repeats): torch eager (the reference: it matches the
upstream code's speed within 7% here), ONNX Runtime fp32 and int8, OpenVINO fp32 and bf16 (where the
CPU has bf16 units). End to end: ``benchmarks/memory_probe.py`` in a fresh process per
backend (what ``swintormer deblur`` computes and reports, start-up apart) with its peak RSS;
the floor is the photo's FLOPs (tiles x fvcore MACs x 2) at this CPU's fp32 matmul rate,
measured in the same run. Issue 18's goals (recorded as met or not): a backend within 3x of the
floor whose output is >= 50 dB against fp32 torch; ONNX Runtime's peak no higher than torch's.
"""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from swintormer.backends import BACKENDS, BackendRequest
from swintormer.inference import tile_function
from swintormer.metrics import psnr
from swintormer.tiling import TilingConfig, plan_tiles

from timing import interleaved

PROBE = Path(__file__).resolve().parent / "memory_probe.py"
PHOTO = (1680, 1120)
TILING = TilingConfig(batch=8)


def _runs(quick: bool) -> list[tuple[str, str]]:
    """(backend, precision) pairs this machine can run, the reference first (int8 outside --quick:
    benchmarks/test_int8.py measures it in CI)."""
    runs = [("torch", "fp32"), ("onnxruntime", "fp32")] + ([] if quick else [("onnxruntime", "int8")])
    if BACKENDS["openvino"].installed():
        from swintormer.backends.openvino import bf16_units

        runs += [("openvino", "fp32")] + ([("openvino", "bf16")] if bf16_units() else [])
    return runs


def fp32_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """This CPU's fp32 matmul rate (GFLOP/s), the best of ``repeats`` ``size``-cubed products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _per_tile(model, runs: list[tuple[str, str]], tiling: TilingConfig, repeats: int) -> dict[str, dict]:
    """``{"backend precision": {ms_per_tile, vs_torch, psnr_vs_torch_db}}``, medians of interleaved
    repeats (each after a settling call) of one batch of seeded random tiles; the first run is the reference."""
    tiles = torch.rand(tiling.batch, model.in_channels, tiling.tile, tiling.tile, generator=torch.Generator().manual_seed(0))
    origins = [(0, 0)] * tiling.batch
    fns = {f"{b} {p}": tile_function(model, b, tiling, BackendRequest(precision=p)) for b, p in runs}
    reference = next(iter(fns))
    ref = fns[reference](tiles, origins)
    quality = {key: psnr(fn(tiles, origins).numpy(), ref.numpy()) for key, fn in fns.items()}  # also the warm-up
    times = interleaved({k: functools.partial(fn, tiles, origins) for k, fn in fns.items()}, repeats)
    ms = {k: 1000 * statistics.median(v) / tiling.batch for k, v in times.items()}
    return {k: {"ms_per_tile": ms[k], "vs_torch": ms[k] / ms[reference], "psnr_vs_torch_db": quality[k]} for k in fns}


def test_per_tile(default_model, record, quick):
    repeats = 2 if quick else 5
    rows = _per_tile(default_model, _runs(quick), TILING, repeats)
    record("cpu_backends", {"model": "bundled default (swintormer-tiny)", "tile": TILING.tile, "batch": TILING.batch,
                            "rows": rows, "repeats": repeats, "settle": 1})
    assert all(v["psnr_vs_torch_db"] >= 30 for v in rows.values()), rows  # every backend computes the same model


#: Issue 18's goal for the full-size model: a swintormer-dpdd tile in <= 0.35x the eager time
FULL_SIZE_GOAL = 0.35


@pytest.mark.slow
def test_full_size_per_tile(full_size, record):
    """swintormer-dpdd (seeded random weights: speed does not need trained ones), one 256x256 tile
    a call, every CPU backend against torch eager."""
    if not full_size:
        pytest.skip("the full-size export takes minutes on a CPU; run `pytest benchmarks/ --full-size`")
    from swintormer.model import DeblurModel

    torch.manual_seed(0)
    model = DeblurModel.build("swintormer-dpdd")
    tiling = TilingConfig(batch=1)
    runs = [r for r in _runs(quick=True) if r != ("onnxruntime", "int8")]
    repeats = 3
    rows = _per_tile(model, runs, tiling, repeats)
    best = min((k for k in rows if k != "torch fp32"), key=lambda k: rows[k]["vs_torch"])
    goals = {f"<= {FULL_SIZE_GOAL}x torch eager ({best})": bool(rows[best]["vs_torch"] <= FULL_SIZE_GOAL)}
    record("cpu_backends_full_size", {"model": "swintormer-dpdd (seeded random weights)", "tile": tiling.tile,
                                      "batch": tiling.batch, "rows": rows, "repeats": repeats, "settle": 1, "goals": goals, "notes": [
                                          "PSNR on seeded random weights and uniform-noise tiles, which amplify rounding: the "
                                          "trained default model's bf16 output is measured on a photo in the end-to-end table"]})
    print(f"\nswintormer-dpdd per tile: {rows}; goals {goals}")
    assert all(v["psnr_vs_torch_db"] >= 30 for v in rows.values()), rows


def _probe(backend: str, precision: str, save: Path) -> dict:
    cmd = [sys.executable, str(PROBE), str(PHOTO[0]), str(PHOTO[1]), "--resize", "--backend", backend, "--precision", precision,
           "--save", str(save)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_photo_against_its_floor(default_model, record, quick, tmp_path):
    from swintormer.profiling import count_cost

    peak = fp32_peak_gflops(2048 if quick else 4096)
    macs = count_cost(default_model.restorer, (1, 3, TILING.tile, TILING.tile)).fvcore_macs
    n_tiles = len(plan_tiles(PHOTO[1], PHOTO[0], TILING.tile, TILING.stride).origins)
    floor_s = n_tiles * 2 * macs / 1e9 / peak
    repeats = 1 if quick else 3
    results: dict[str, list[dict]] = {}
    for i in range(repeats):  # interleaved: each round runs every backend once
        for backend, precision in _runs(quick):
            key = f"{backend} {precision}"
            results.setdefault(key, []).append(_probe(backend, precision, tmp_path / f"{backend}-{precision}-{i}.npy"))
    ref = np.load(tmp_path / "torch-fp32-0.npy").astype(np.float64) / 255
    rows = {}
    for key, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        outs = [np.load(tmp_path / f"{key.replace(' ', '-')}-{i}.npy").astype(np.float64) / 255 for i in range(repeats)]
        rows[key] = {"seconds": seconds, "vs_floor": seconds / floor_s, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                     "psnr_vs_torch_db": min(psnr(out, ref) for out in outs)}  # the worst repeat
    best = min((k for k in rows if rows[k]["psnr_vs_torch_db"] >= 50), key=lambda k: rows[k]["seconds"])
    goals = {f"within 3x of the floor ({best})": rows[best]["vs_floor"] <= 3.0,
             "onnxruntime peak RSS <= torch's": rows["onnxruntime fp32"]["peak_rss_mb"] <= rows["torch fp32"]["peak_rss_mb"]}
    record("photo_floor", {
        "photo": f"astronaut resized to {PHOTO[0]}x{PHOTO[1]}, uint8", "tiles": n_tiles, "gflop_per_tile": 2 * macs / 1e9,
        "fp32_peak_gflops": peak, "floor_s": floor_s, "rows": rows, "best": best, "goals": goals, "repeats": repeats,
        "notes": ["seconds: the tiled pass in a fresh process (first-call warm-up included, start-up and model load apart), "
                  "as `swintormer deblur` reports it; PSNR of the 8-bit output against fp32 torch's"]})
    assert rows["torch fp32"]["psnr_vs_torch_db"] == float("inf")
    assert all(r["psnr_vs_torch_db"] >= 30 for r in rows.values()), rows
    assert all(r["vs_floor"] >= 1.0 for k, r in rows.items() if k.endswith("fp32")), "fp32 faster than the fp32 roofline: the floor is wrong"
