"""Speed of the restorers on a GPU: per tile and on a whole photo, execution modes x precisions.

    python benchmarks/bench_gpu.py [--quick] [--budget SECONDS] [--out PATH] [--device cuda]
                                   [--models ...] [--tiles ...] [--dtypes ...] [--modes ...]

Per tile: ``swintormer-dpdd`` (seeded random weights: its speed, not its output) and the bundled
default model, on 256 px tiles (batch 8) and 512 px tiles (batch 2: the same pixels a call),
in float32, float16 and bfloat16, each through four execution modes:

- ``eager``: the model's PyTorch attention, the upstream code's path;
- ``triton``: this project's Triton attention kernels, the rest eager;
- ``compile``: ``torch.compile`` (inductor, default mode, static shapes) of the PyTorch path;
- ``cuda_graph``: the model captured once in a CUDA graph and replayed, its attention on the
  Triton kernels where they take the dtype (fp32, fp16) and PyTorch's otherwise (bf16).

The Triton kernels take fp32 and fp16: ``triton`` bf16 cells are recorded as skipped.

The tiles are crops of the bundled sample photograph; every cell's output is compared with the
float32 eager output of the same tiles (PSNR, data range 1). End to end: the sample resized to
1680x1120 through the shared tiler (tile 256, stride 220, batch 8: the command line's defaults),
each model in each precision through its fastest measured 256 px mode, the short last batch
padded to the captured shape, timed warm (median of 3), with its PSNR against fp32 eager.

Cells run in this order: 256 px without ``compile``, the photo, 512 px without ``compile``,
then ``compile`` (its first call compiles, tens of seconds a cell). The JSON is rewritten after
every cell (``"partial": true`` until the end); a cell that would start after ``--budget``
seconds is recorded as skipped with the reason, so the script ends in time and says what it
did not measure. Results go to ``benchmarks/results/<device>-gpu.json``.

``--device cpu`` runs the same code on the CPU (``cuda_graph`` skipped, ``triton`` only under
``TRITON_INTERPRET=1``): the smoke test that keeps this script working between GPU sessions.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from recording import git_revision, results_file
from timing import latencies

log = logging.getLogger("bench_gpu")

MODELS = ("swintormer-dpdd", "default")
MODES = ("eager", "triton", "cuda_graph", "compile")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: tiles a call per tile size: the same pixels a call at 256 and 512
BATCH = {256: 8, 512: 2}
PHOTO = (1680, 1120)
Run = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Cell:
    """One measurement: ``model`` on ``batch`` tiles of ``tile`` px in ``dtype`` through ``mode``."""

    model: str
    tile: int
    batch: int
    dtype: str
    mode: str


def build_cells(models: list[str], tiles: list[int], dtypes: list[str], modes: list[str]) -> list[Cell]:
    """Every combination, in the order they run: the first tile size without ``compile``, then
    the other sizes without it, then ``compile`` (slowest to start) for every size."""
    plain = [m for m in modes if m != "compile"]
    order = [(tiles[:1], plain), (tiles[1:], plain), (tiles, [m for m in modes if m == "compile"])]
    return [Cell(model, tile, BATCH.get(tile, 1), dtype, mode)
            for group, group_modes in order for tile in group for model in models for dtype in dtypes for mode in group_modes]


def load_restorer(name: str) -> tuple[torch.nn.Module, str]:
    """``(restorer, label)``: the bundled default's trained restorer, or a registered variant with
    seeded random weights."""
    from swintormer.model import DeblurModel

    if name == "default":
        model = DeblurModel.load()
        return model.restorer.eval(), f"bundled default ({model.name})"
    torch.manual_seed(0)
    return DeblurModel.build(name).restorer.eval(), f"{name} (seeded random weights)"


def sample_photo(size: tuple[int, int] = PHOTO) -> torch.Tensor:
    """The bundled blurry sample resized (bicubic, antialiased) to ``size`` (w, h): ``[3, h, w]``."""
    from swintormer.imageio import read_image
    from swintormer.model import ASSETS

    pixels = torch.from_numpy(read_image(ASSETS / "sample_blurry.png").pixels).permute(2, 0, 1)[None]
    return F.interpolate(pixels, size=(size[1], size[0]), mode="bicubic", antialias=True).clamp(0, 1)[0]


def photo_tiles(photo: torch.Tensor, tile: int, batch: int, channels: int) -> torch.Tensor:
    """``batch`` tiles cropped along the photo's diagonal, its RGB repeated to ``channels``."""
    h, w = photo.shape[1:]
    crops = []
    for i in range(batch):
        y = (h - tile) * i // max(batch - 1, 1)
        x = (w - tile) * i // max(batch - 1, 1)
        crops.append(photo[:, y : y + tile, x : x + tile])
    tiles = torch.stack(crops)
    return tiles.repeat(1, channels // 3, 1, 1) if channels != 3 else tiles


def attention(mode: str, dtype: torch.dtype) -> str:
    """The attention backend a cell runs: the kernels for ``triton``, and for ``cuda_graph`` where they take ``dtype``."""
    from swintormer.kernels import SUPPORTED_DTYPES

    return "triton" if mode == "triton" or (mode == "cuda_graph" and dtype in SUPPORTED_DTYPES) else "torch"


def why_not(mode: str, device: torch.device, dtype: torch.dtype = torch.float32) -> str:
    """Why ``mode`` cannot run on ``device`` in ``dtype`` ("" when it can)."""
    from swintormer.kernels import SUPPORTED_DTYPES

    if mode == "cuda_graph" and device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if mode == "triton" and dtype not in SUPPORTED_DTYPES:
        return f"the Triton kernels take {' and '.join(str(d).split('.')[-1] for d in SUPPORTED_DTYPES)}"
    if attention(mode, dtype) == "triton":
        from swintormer.layers.backend import check_backend
        from swintormer.errors import SwintormerError

        try:
            check_backend("triton")
        except SwintormerError as exc:
            return str(exc).splitlines()[0]
    return ""


def make_runner(restorer: torch.nn.Module, mode: str, dtype: torch.dtype, example: torch.Tensor,
                compile_backend: str = "inductor") -> Run:
    """``run(tiles) -> output`` for ``restorer`` in ``dtype`` through ``mode``; ``example`` fixes
    the shape a CUDA graph is captured for, ``compile_backend`` is torch.compile's."""
    from swintormer.models import set_attention_backend

    model = copy.deepcopy(restorer).to(example.device, dtype).eval()
    set_attention_backend(model, attention(mode, dtype))
    if mode == "compile":
        model = torch.compile(model, dynamic=False, backend=compile_backend)
    if mode != "cuda_graph":
        return lambda x: model(x.to(dtype))
    static = example.to(dtype).clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capture: kernels compiled, autotuned
        for _ in range(3):
            model(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = model(static)

    def replay(x: torch.Tensor) -> torch.Tensor:
        static.copy_(x)
        graph.replay()
        return out

    return replay


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 2) -> float:
    """Median wall-clock milliseconds of ``reps`` synchronised calls after ``warmup`` calls."""
    return 1e3 * statistics.median(latencies(lambda: (fn(), _sync(device)), reps, warmup))


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    from swintormer.metrics import psnr

    return round(float(psnr(a.float().cpu().numpy(), b.float().cpu().numpy())), 2)


def photo_run(run: Run, batch: int, photo: torch.Tensor, device: torch.device) -> tuple[np.ndarray, float]:
    """The photo through the shared tiler with ``run`` on ``batch``-tile calls (a short batch
    padded): ``(output [H, W, 3] float32, seconds)``."""
    from swintormer.backends.compose import make_tile_fn
    from swintormer.tiling import TilingConfig, tiled_apply

    def restore(tiles: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        n = tiles.shape[0]
        if n < batch:
            tiles = torch.cat([tiles, tiles[-1:].expand(batch - n, -1, -1, -1)])
        with torch.inference_mode():
            return run(tiles)[:n].float()

    image = photo.permute(1, 2, 0).numpy()
    fn = make_tile_fn(restore, device=device)
    tiling = TilingConfig(batch=batch)
    start = time.perf_counter()
    out = tiled_apply(fn, image, 3, tiling, progress=False)
    return out, time.perf_counter() - start


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu-{torch.get_num_threads()}t"


class Bench:
    """The run: cells measured in order against a time budget, the report rewritten after each."""

    def __init__(self, args: argparse.Namespace, device: torch.device, out: Path, command: str) -> None:
        self.args, self.device, self.out, self.start = args, device, out, time.monotonic()
        self.photo = sample_photo()
        self.restorers: dict[str, tuple[torch.nn.Module, str]] = {}
        self.references: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.runners: dict[tuple[str, str, str], Run] = {}  # (model, dtype, mode) at the first tile size
        import triton

        self.report = {
            "kind": "gpu_tiles", "device": device_name(device), "torch": torch.__version__,
            "triton": triton.__version__, "cuda": torch.version.cuda, "command": command,
            "git_revision": git_revision(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "budget_s": args.budget, "compile_backend": args.compile_backend, "method": __doc__.split("\n\n", 1)[1].strip(), "models": {}, "cells": [], "photo": [],
        }

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def save(self, partial: bool = True) -> None:
        self.report.update(partial=partial, elapsed_s=round(self.elapsed(), 1), summary=summarize(self.report["cells"]))
        self.out.write_text(json.dumps(self.report, indent=1) + "\n")

    def restorer(self, name: str) -> torch.nn.Module:
        if name not in self.restorers:
            self.restorers[name] = load_restorer(name)
            self.report["models"][name] = self.restorers[name][1]
        return self.restorers[name][0]

    def reference(self, model: str, tile: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tiles, fp32 eager output)`` on the device, computed once per (model, tile)."""
        if (model, tile) not in self.references:
            restorer = self.restorer(model)
            tiles = photo_tiles(self.photo, tile, batch, restorer.config.in_channels).to(self.device)
            with torch.inference_mode():
                out = make_runner(restorer, "eager", torch.float32, tiles)(tiles).float()
            self.references[(model, tile)] = tiles, out
        return self.references[(model, tile)]

    def measure(self, cell: Cell) -> dict:
        row = asdict(cell)
        reason = why_not(cell.mode, self.device, DTYPES[cell.dtype]) or (f"over the {self.args.budget:g} s budget" if self.elapsed() > self.args.budget else "")
        if reason:
            return {**row, "skipped": reason}
        try:
            tiles, expected = self.reference(cell.model, cell.tile, cell.batch)
            started = time.perf_counter()
            with torch.inference_mode():
                run = make_runner(self.restorer(cell.model), cell.mode, DTYPES[cell.dtype], tiles, self.args.compile_backend)
                got = run(tiles).float().clone()  # a CUDA graph's output is overwritten by the next replay
                _sync(self.device)
                first = time.perf_counter() - started
                ms = median_ms(lambda: run(tiles), self.device, self.args.reps)
        except Exception as exc:  # a mode that fails here is a finding to record, not a crash of the run
            log.warning("%s failed: %s", cell, str(exc).splitlines()[0][:300])
            return {**row, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        if cell.tile == self.args.tiles[0]:
            self.runners[(cell.model, cell.dtype, cell.mode)] = run
        return {**row, "attention": attention(cell.mode, DTYPES[cell.dtype]), "ms_per_call": round(ms, 3), "ms_per_tile": round(ms / cell.batch, 3),
                "first_call_s": round(first, 2), "psnr_vs_fp32_eager_db": psnr_db(got, expected)}

    def photo_cell(self, model: str, dtype: str) -> dict:
        row = {"model": model, "dtype": dtype, "size": f"{PHOTO[0]}x{PHOTO[1]}", "tile": 256, "stride": 220}
        measured = [c for c in self.report["cells"] if c["model"] == model and c["dtype"] == dtype and c["tile"] == self.args.tiles[0]
                    and "ms_per_tile" in c and (c["model"], c["dtype"], c["mode"]) in self.runners]
        if not measured or self.elapsed() > self.args.budget or self.args.tiles[0] != 256:
            return {**row, "skipped": "no 256 px mode measured" if not measured else "over the budget"}
        best = min(measured, key=lambda c: c["ms_per_tile"])
        run, batch = self.runners[(model, dtype, best["mode"])], best["batch"]
        times, out = [], None
        try:
            reference = self.photo_reference(model)
            for _ in range(3):
                out, seconds = photo_run(run, batch, self.photo, self.device)
                times.append(seconds)
        except Exception as exc:  # recorded, as a cell's
            log.warning("photo %s %s failed: %s", model, dtype, str(exc).splitlines()[0][:300])
            return {**row, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        return {**row, "mode": best["mode"], "batch": batch, "seconds": round(statistics.median(times), 3),
                "megapixels_per_s": round(PHOTO[0] * PHOTO[1] / 1e6 / statistics.median(times), 2),
                "psnr_vs_fp32_eager_db": psnr_db(torch.from_numpy(out), torch.from_numpy(reference))}

    def photo_reference(self, model: str) -> np.ndarray:
        key = ("photo", model)
        if key not in self.references:
            tiles = self.reference(model, 256, BATCH[256])[0]
            run = make_runner(self.restorer(model), "eager", torch.float32, tiles)
            self.references[key] = photo_run(run, BATCH[256], self.photo, self.device)[0]
        return self.references[key]

    def run(self) -> dict:
        args = self.args
        cells = build_cells(args.models, args.tiles, args.dtypes, args.modes)
        first_size = [c for c in cells if c.tile == args.tiles[0] and c.mode != "compile"]
        self.save()
        for i, cell in enumerate(cells):
            self.report["cells"].append(self.measure(cell))
            log.info("[%5.0f s] %s", self.elapsed(), _line(self.report["cells"][-1]))
            self.save()
            if first_size and cell == first_size[-1] and args.photo:  # the photo right after the first size's cells
                for model in args.models:
                    for dtype in args.dtypes:
                        self.report["photo"].append(self.photo_cell(model, dtype))
                        p = self.report["photo"][-1]
                        log.info("[%5.0f s] photo %-10s %-8s %s", self.elapsed(), p["model"], p["dtype"], p.get("skipped") or
                                 f"{p['mode']}: {p['seconds']:.3f} s, {p['megapixels_per_s']} MP/s, {p['psnr_vs_fp32_eager_db']} dB")
                        self.save()
                self.runners.clear()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        self.save(partial=False)
        return self.report


def _line(row: dict) -> str:
    what = f"{row['model']:16s} {row['tile']} {row['dtype']:8s} {row['mode']:10s}"
    if "ms_per_tile" in row:
        return f"{what} {row['ms_per_tile']:9.3f} ms/tile  {row['psnr_vs_fp32_eager_db']} dB  (first call {row['first_call_s']} s)"
    return f"{what} {row.get('skipped') or row.get('error')}"


def summarize(cells: list[dict]) -> dict:
    """Per model and tile: each measured ``dtype mode`` as a speed-up over fp32 eager, and the best."""
    summary = {}
    for model, tile in sorted({(c["model"], c["tile"]) for c in cells}):
        rows = {f"{c['dtype']} {c['mode']}": c["ms_per_tile"] for c in cells
                if c["model"] == model and c["tile"] == tile and "ms_per_tile" in c}
        base = rows.get("float32 eager")
        if not base:
            continue
        speedups = {k: round(base / v, 2) for k, v in rows.items()}
        best = max(speedups, key=speedups.get)
        summary[f"{model} {tile}"] = {"fp32_eager_ms_per_tile": base, "speedup_vs_fp32_eager": speedups, "best": best}
    return summary


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the default model only, 256 px, float16 and float32, 5 repeats")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (the smoke test)")
    p.add_argument("--models", nargs="+", default=list(MODELS), help=f"registered variants or 'default' (default: {' '.join(MODELS)})")
    p.add_argument("--tiles", nargs="+", type=int, default=[256, 512], help="tile sizes (default: 256 512)")
    p.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    p.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    p.add_argument("--reps", type=int, default=10, help="timed calls a cell (median; default 10)")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend of the compile cells (default inductor; the CPU smoke test uses aot_eager)")
    p.add_argument("--no-photo", dest="photo", action="store_false", help="skip the 1680x1120 end-to-end runs")
    p.add_argument("--budget", type=float, default=300.0, help="start no cell after this many seconds (default 300)")
    p.add_argument("--out", type=Path, help="JSON path or folder (default: benchmarks/results/<device>-gpu.json)")
    args = p.parse_args(argv)
    from swintormer.models.config import RestorerConfig
    from swintormer.registry import get_config, list_models

    known = ["default", *(m for m in list_models(RestorerConfig) if not get_config(m).prior_channels)]  # restorers alone
    unknown = [m for m in args.models if m not in known]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.reps < 1 or args.budget <= 0:
        p.error("--reps must be >= 1 and --budget > 0")
    if args.quick:
        args.models, args.tiles, args.dtypes, args.reps = ["default"], [256], ["float32", "float16"], 5
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log.warning("no CUDA GPU here: nothing to measure (--device cpu runs the smoke test)")
        return 0
    try:
        import triton  # noqa: F401
    except ImportError:
        log.warning("Triton is not installed: the kernels' modes cannot run (pip install triton)")
        return 0
    out = results_file(args.out, device_name(device), "gpu")
    report = Bench(args, device, out, " ".join(["python", "benchmarks/bench_gpu.py", *argv])).run()
    for key, value in report["summary"].items():
        log.info("%-28s fp32 eager %.3f ms/tile, best %s (%.2fx)", key, value["fp32_eager_ms_per_tile"], value["best"],
                 value["speedup_vs_fp32_eager"][value["best"]])
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
