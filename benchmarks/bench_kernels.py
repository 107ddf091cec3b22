"""Speed of the Triton attention kernels against the PyTorch eager reference and SDPA, on a GPU.

    python benchmarks/bench_kernels.py [--quick] [--out PATH]

Shapes are those of real tiles: 256x256 and 512x512 inputs, batch 8, at every attention level of
``swintormer-dpdd`` (window attention, windowed channel attention, both together) and of
``restormer-defocus-single`` (MDTA). Each implementation starts from the same depthwise-conv
output and ends with the same ``[B, C, H, W]`` layout ``project_out`` takes, so the eager times
include the chunk/transposes, ``window_reverse`` and the roll back the kernels make unnecessary.

- ``eager``: the model's torch path (:mod:`swintormer.layers.attention`), the CPB bias and the
  shift mask computed once outside the timing (as cached tables would be).
- ``sdpa``: the same steps with ``F.scaled_dot_product_attention`` as the core, given the bias
  and mask as a precomputed ``attn_mask``. It computes the ordinary softmax, not ``softmax_one``:
  a speed reference on the same windows, not a numerical one. MDTA has none: its "head dim" is
  ``H*W``, beyond every fused SDPA backend.

Times are medians of ``triton.testing.do_bench``. Rates use the minimum traffic (read q, k, v
once, write the output once) and the attention matmul FLOPs, against the device's DRAM peak
(from its memory clock and bus width) and its dense fp16 tensor-core / fp32 peak for the devices
listed in ``FLOP_PEAKS``. Results go to ``benchmarks/results/<device>-kernels.json``. Without a
CUDA GPU the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from swintormer.layers.attention import (
    channel_branch,
    continuous_position_bias,
    mdta,
    relative_position_index,
    shift_window_mask,
    unwindow,
    window_branch,
)
from swintormer.registry import get_config

from recording import git_revision, results_file

log = logging.getLogger("bench_kernels")

NEEDS_GPU = "the kernel benchmark needs a CUDA GPU (and Triton); nothing to measure here"
#: Dense peaks (TFLOP/s) as ``(device name pattern, fp16 tensor core with fp32 accumulate, fp32)``.
FLOP_PEAKS = [
    (r"H100.*(SXM|HBM3)", 989.4, 66.9),
    (r"H100.*PCIe", 756.5, 51.2),
    (r"H100.*NVL", 835.0, 60.0),
    (r"H200", 989.4, 66.9),
    (r"A100", 312.0, 19.5),
    (r"RTX 2080 Ti", 53.8, 13.4),
]
#: Acceptance targets of the kernels' issue (fp16): kernel speedup over eager and over SDPA.
TARGETS = {"window_attention": {"eager": 3.0, "sdpa": 1.5}, "mdta": {"eager": 2.0}}
Impl = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One attention call: ``op`` on ``batch`` tiles of ``tile`` px at ``level`` of ``model``."""

    op: str
    model: str
    tile: int
    level: str
    dtype: str
    batch: int
    channels: int
    heads: int
    height: int
    width: int
    window: int = 0
    shift: int = 0


def attention_levels(model: str, tile: int) -> list[tuple[str, int, int, int]]:
    """``(level, channels, heads, resolution)`` of every attention level for a ``tile`` input."""
    cfg = get_config(model)
    first = tile // 2 if cfg.arch == "swintormer" else tile  # Swintormer's stem pixel-unshuffles
    levels = [(f"level{i + 1}", cfg.dim * 2**i, cfg.heads[i], first // 2**i) for i in range(4)]
    return levels + [("decoder1+refinement", 2 * cfg.dim, cfg.heads[0], first)]


def build_cases(tiles: list[int], dtypes: list[str], batch: int) -> list[Case]:
    """Every op at every level for each tile size and dtype; window attention shifted and not."""
    m = get_config("swintormer-dpdd").window_size
    swin_ops = [("window_attention", 0), ("window_attention", m // 2), ("window_channel_attention", m // 2),
                ("swin_attention", m // 2)]  # fmt: skip
    cases = []
    for tile in tiles:
        for dtype in dtypes:
            for level, c, h, res in attention_levels("swintormer-dpdd", tile):
                for op, shift in swin_ops:
                    cases.append(Case(op, "swintormer-dpdd", tile, level, dtype, batch, c, h, res, res, m, shift))
            for level, c, h, res in attention_levels("restormer-defocus-single", tile):
                cases.append(Case("mdta", "restormer-defocus-single", tile, level, dtype, batch, c, h, res, res))
    return cases


def _unwindow(out: torch.Tensor, case: Case) -> torch.Tensor:
    """``[Bw, C', M, M]`` -> ``[B, C', H, W]`` rolled back by the shift, as the model does."""
    return unwindow(out, case.height, case.width, case.shift)


def _window_inputs(case: Case, dtype: torch.dtype, device: str) -> dict:
    """qkv ``[Bw, 3C, M, M]``, logit scale, CPB MLP output and the derived eager/SDPA tables."""
    m, h = case.window, case.heads
    windows = case.batch * (case.height // m) * (case.width // m)
    gen = torch.Generator(device).manual_seed(0)  # drawn on the device: a 512 px case is ~10^8 numbers
    qkv = torch.randn(windows, 3 * case.channels, m, m, generator=gen, device=device).to(dtype)
    logit_scale = (math.log(10.0) + torch.randn(h, 1, 1, generator=gen, device=device)).to(dtype)
    mlp_table = torch.randn((2 * m - 1) ** 2, h, generator=gen, device=device).to(dtype)
    bias = continuous_position_bias(mlp_table, relative_position_index(m).to(device))  # [h, N, N]
    mask = shift_window_mask(case.height, case.width, m, case.shift, qkv.device).to(dtype) if case.shift else None
    if mask is None:
        sdpa_mask = bias[None].expand(windows, -1, -1, -1)  # broadcast, no copy
    else:  # [B * nW, h, N, N]: SDPA cannot broadcast the per-window mask over the images
        sdpa_mask = (bias[None, None] + mask[None, :, None]).expand(case.batch, -1, -1, -1, -1).flatten(0, 1)
    table = 16 * torch.sigmoid(mlp_table)
    return dict(qkv=qkv, logit_scale=logit_scale, table=table, bias=bias, mask=mask, sdpa_mask=sdpa_mask)


def _window_cores(case: Case, x: dict) -> dict[str, Impl]:
    """Eager and SDPA window branch: ``[Bw, C/2, M, M]`` in window layout, as the model has it."""
    qkv, m, h = x["qkv"], case.window, case.heads
    q, k, v = (t.reshape(t.shape[0], h, -1, m * m).transpose(-2, -1) for t in qkv.chunk(2, dim=1)[0].chunk(3, dim=1))

    def sdpa():
        qn = F.normalize(q, dim=-1) * torch.clamp(x["logit_scale"], max=math.log(100.0)).exp()
        return F.scaled_dot_product_attention(qn, F.normalize(k, dim=-1), v, attn_mask=x["sdpa_mask"], scale=1.0)

    def sdpa_windows():
        return sdpa().transpose(-2, -1).reshape(-1, case.channels // 2, m, m)

    def eager():  # the model's own composition
        return window_branch(qkv.chunk(2, dim=1)[0], h, x["logit_scale"], x["bias"], x["mask"])

    return {"eager": eager, "sdpa": sdpa_windows}


def _channel_cores(case: Case, x: dict) -> dict[str, Impl]:
    """Eager and SDPA channel branch: ``[Bw, C/2, M, M]`` in window layout."""
    qkv, m, h = x["qkv"], case.window, case.heads
    q, k, v = (t.reshape(t.shape[0], h, -1, m * m) for t in qkv.chunk(2, dim=1)[1].chunk(3, dim=1))

    def sdpa():
        out = F.scaled_dot_product_attention(F.normalize(q, dim=-1), F.normalize(k, dim=-1), v, scale=1.0)
        return out.reshape(-1, case.channels // 2, m, m)

    def eager():  # the model's own composition
        return channel_branch(qkv.chunk(2, dim=1)[1], h)

    return {"eager": eager, "sdpa": sdpa}


def _window_branch_impls(case: Case, x: dict) -> dict[str, Impl]:
    from swintormer.kernels.window_attention import window_attention as kernel

    cores = _window_cores(case, x)
    size = (case.height, case.width)
    return {
        "triton": lambda: kernel(x["qkv"], x["logit_scale"], x["table"], case.heads, size, case.shift),
        **{name: (lambda f=f: _unwindow(f(), case)) for name, f in cores.items()},
    }


def _channel_branch_impls(case: Case, x: dict) -> dict[str, Impl]:
    from swintormer.kernels.window_channel_attention import window_channel_attention as kernel

    cores = _channel_cores(case, x)
    return {
        "triton": lambda: kernel(x["qkv"], case.heads, (case.height, case.width), case.shift),
        **{name: (lambda f=f: _unwindow(f(), case)) for name, f in cores.items()},
    }


def _swin_impls(case: Case, x: dict) -> dict[str, Impl]:
    """Both branches, concatenated, window-reversed and rolled back: the model's whole step."""
    from swintormer.layers.backend import fused_swin_attention

    window, channel = _window_cores(case, x), _channel_cores(case, x)
    size = (case.height, case.width)
    return {
        "triton": lambda: fused_swin_attention(x["qkv"], x["logit_scale"], x["table"], case.heads, case.shift, size),
        **{name: (lambda n=name: _unwindow(torch.cat([window[n](), channel[n]()], dim=1), case)) for name in window},
    }


def _mdta_impls(case: Case, dtype: torch.dtype, device: str) -> dict[str, Impl]:
    from swintormer.kernels.transposed_attention import transposed_attention as kernel

    gen = torch.Generator(device).manual_seed(0)
    qkv = torch.randn(case.batch, 3 * case.channels, case.height, case.width, generator=gen, device=device).to(dtype)
    temperature = (0.5 + torch.rand(case.heads, 1, 1, generator=gen, device=device)).to(dtype)

    return {"triton": lambda: kernel(qkv, temperature, case.heads), "eager": lambda: mdta(qkv, temperature, case.heads)}


def implementations(case: Case, device: str = "cuda") -> dict[str, Impl]:
    """``{"triton": ..., "eager": ..., ["sdpa": ...]}``, each returning ``[B, C', H, W]``."""
    dtype = getattr(torch, case.dtype)
    if case.op == "mdta":
        return _mdta_impls(case, dtype, device)
    builders = {"window_attention": _window_branch_impls, "window_channel_attention": _channel_branch_impls,
                "swin_attention": _swin_impls}  # fmt: skip
    return builders[case.op](case, _window_inputs(case, dtype, device))


def work(case: Case) -> tuple[int, int]:
    """``(bytes, flops)``: read q, k, v once and write the output once; the attention matmuls
    (``QK^T`` and ``PV``, or the Gram and its product with v), 2 FLOPs per multiply-add."""
    size = torch.finfo(getattr(torch, case.dtype)).bits // 8
    tokens = case.batch * case.height * case.width
    branch = case.channels // 2  # Swintormer splits its channels between the two branches
    window_flops = 4 * tokens * case.window**2 * branch  # N x N per window, d per head
    channel_flops = 4 * tokens * (branch // case.heads) * branch  # d x d per window, N tokens
    flops, channels = {
        "window_attention": (window_flops, branch),
        "window_channel_attention": (channel_flops, branch),
        "swin_attention": (window_flops + channel_flops, case.channels),
        "mdta": (4 * tokens * (case.channels // case.heads) * case.channels, case.channels),
    }[case.op]
    return 4 * tokens * channels * size, flops


def device_peaks() -> dict:
    import triton.testing

    name = torch.cuda.get_device_name()
    peaks = {"dram_gbps": round(triton.testing.get_dram_gbps(), 1), "float16_tflops": None, "float32_tflops": None}
    for pattern, fp16, fp32 in FLOP_PEAKS:
        if re.search(pattern, name):
            peaks.update(float16_tflops=fp16, float32_tflops=fp32)
            break
    peaks["source"] = "DRAM: memory clock x bus width; FLOP/s: vendor datasheet (dense), null if not listed"
    return peaks


def measure(case: Case, peaks: dict) -> dict:
    """Median ms of each implementation, the kernel's rates and its error against eager."""
    from triton.testing import do_bench

    impls = implementations(case)
    expected, actual = impls["eager"]().float(), impls["triton"]().float()
    # 10 ms warm-up and 40 ms of repeats (do_bench's defaults are 25/100): every case finishes
    # in one GPU session; the kernels take 0.01-2 ms, so a median still has 20+ calls behind it
    ms = {name: do_bench(fn, warmup=10, rep=40, return_mode="median") for name, fn in impls.items()}
    nbytes, flops = work(case)
    row = {**asdict(case), "ms": {k: round(v, 4) for k, v in ms.items()}}
    row["max_abs_err_vs_eager"] = float((actual - expected).abs().max())
    row["speedup"] = {k: round(v / ms["triton"], 2) for k, v in ms.items() if k != "triton"}
    row["triton_gbps"] = round(nbytes / ms["triton"] / 1e6, 1)
    row["triton_tflops"] = round(flops / ms["triton"] / 1e9, 2)
    row["pct_dram_peak"] = round(100 * row["triton_gbps"] / peaks["dram_gbps"], 1)
    flop_peak = peaks[f"{case.dtype}_tflops"]
    row["pct_flop_peak"] = round(100 * row["triton_tflops"] / flop_peak, 1) if flop_peak else None
    return row


def summarize(rows: list[dict]) -> dict:
    """Geometric-mean fp16 speedups per op, against the issue's targets."""
    summary = {}
    for op in sorted({r["op"] for r in rows}):
        speedups = [r["speedup"] for r in rows if r["op"] == op and r["dtype"] == "float16"]
        for baseline in sorted({k for s in speedups for k in s}):
            values = [s[baseline] for s in speedups]
            geo = round(math.exp(sum(math.log(v) for v in values) / len(values)), 2)
            target = TARGETS.get(op, {}).get(baseline)
            summary[f"{op}/{baseline}"] = {"geomean_fp16": geo, "min_fp16": min(values), "target": target,
                                           "met": None if target is None else geo >= target}  # fmt: skip
    return summary


def run(tiles: list[int], dtypes: list[str], batch: int, out: Path | None, command: str) -> Path:
    """Measure every case, write the JSON report and return its path.

    The report is rewritten after every case (``"partial": true`` until the last), so a run cut
    short by a time limit still leaves the cases it measured.
    """
    import triton

    peaks = device_peaks()
    name = torch.cuda.get_device_name()
    out = results_file(out, name, "kernels")
    cases = build_cases(tiles, dtypes, batch)
    report = {
        "device": name,
        "capability": list(torch.cuda.get_device_capability()),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "command": command,
        "git_revision": git_revision(),  # "-dirty" when tracked files had changes
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "peaks": peaks,
    }
    rows: list[dict] = []
    for case in cases:
        rows.append(measure(case, peaks))
        log.info("%-25s %-10s %s %-20s %s", case.op, case.dtype, case.tile, case.level, rows[-1]["ms"])
        torch.cuda.empty_cache()
        partial = len(rows) < len(cases)
        note = {"note": f"{len(rows)} of {len(cases)} cases measured so far"} if partial else {}
        doc = {**report, "partial": partial, **note, "summary": summarize(rows), "results": rows}
        out.write_text(json.dumps(doc, indent=1) + "\n")
    return out


def gpu_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256x256 tiles in fp16 only")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, help="JSON path (default: benchmarks/results/<device>-kernels.json)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not gpu_available():
        log.warning(NEEDS_GPU)
        return 0
    tiles, dtypes = ([256], ["float16"]) if args.quick else ([256, 512], ["float16", "float32"])
    path = run(tiles, dtypes, args.batch, args.out, " ".join(["python", "benchmarks/bench_kernels.py", *argv]))
    report = json.loads(path.read_text())
    for key, value in report["summary"].items():
        log.info("%-40s %s", key, value)
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
