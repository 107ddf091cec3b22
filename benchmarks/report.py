#!/usr/bin/env python3
"""Turn a folder of results (``<device>.json``) into a ``BENCHMARKS.md`` with tables and PNG plots.

    python benchmarks/report.py                      # benchmarks/results/ -> BENCHMARKS.md
    python benchmarks/report.py runs/bench/<run>     # a run folder -> its own BENCHMARKS.md

`pytest benchmarks/` writes its run folder's report itself, and the committed one with --record.

Every table says which device, command and git revision produced it; quick-mode numbers (CI)
are labelled as such.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _g(x: float) -> str:
    return f"{x / 1e9:.2f}"


def _env_line(section: dict) -> str:
    env = section["environment"]
    quick = " (quick mode)" if section.get("quick") else ""
    v = env["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "onnxruntime", "onnx") if k in v)
    return f"_Measured on {env['device']} ({env['cpu_count']} CPUs, {env['torch_threads']} torch threads{', GPU ' + env['gpu'] if env.get('gpu') else ''}), {libs}, git {env['git_revision']}, `{env['command']}`, {env['date']}{quick}._"


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _cost(sec: dict) -> list[str]:
    lines = ["### Cost", _env_line(sec), ""]
    rows = []
    for name, by_size in sec["variants"].items():
        r256, r512 = by_size["256"], by_size["512"]
        ref = sec["reference"].get(name, {})
        paper = f"{ref['paper_macs'] / 1e9:.2f} G, {ref['paper_params'] / 1e6:.2f} M" if "paper_macs" in ref else ""
        rows.append([f"`{name}`", f"{r256['params']:,}", _g(r256["thop_macs"]), _g(r256["fvcore_macs"]), _g(r512["thop_macs"]), _g(r512["fvcore_macs"]), paper])
    lines += _table(["variant", "params", "GMACs 256² thop", "GMACs 256² fvcore", "GMACs 512² thop", "GMACs 512² fvcore", "paper"], rows)
    conv = sec["conventions"]
    lines += ["", f"thop: {conv['thop']}; fvcore: {conv['fvcore']}. Denoisers are counted at 1/4 of the tile (their latent).", ""]
    h, w = sec["whole_image"]
    lines += [f"Whole {w}x{h} image through tiling (fvcore GMACs per megapixel; the prior column is per DDIM step):", ""]
    rows = [[k, v["tiles"], f"{v['gmacs_per_megapixel']:.1f}", f"{100 * v['overlap_overhead']:.0f}%",
             "" if v["prior_gmacs_per_megapixel_per_step"] is None else f"{v['prior_gmacs_per_megapixel_per_step']:.1f}"]
            for k, v in sec["tiling"].items()]
    return lines + _table(["model@tile/stride", "tiles", "GMACs/MP", "overlap overhead", "prior GMACs/MP/step"], rows) + [""]


def _parity(sec: dict) -> list[str]:
    lines = ["### Parity (PSNR against the PyTorch pipeline, full tiled pipeline on real photographs)", _env_line(sec), ""]
    rows = [[b, f"{min(v.values()):.1f}", ", ".join(f"{k} {x:.1f}" for k, x in v.items())] for b, v in sec["psnr_db"].items()]
    lines += _table(["backend", "worst PSNR (dB)", "per photo"], rows)
    return lines + ["", *(f"- {n}" for n in sec.get("notes", [])), ""]


def _parity_full(sec: dict) -> list[str]:
    lines = ["### Parity of the full-size variants (ONNX Runtime vs PyTorch, seeded random weights, a real photo)", _env_line(sec), ""]
    variants = {name: v for name, v in sec.items() if isinstance(v, dict) and name != "environment"}
    keys = sorted({k for v in variants.values() for k in v})
    rows = [[f"`{name}`", *(f"{v[k]:.1f}" if k in v else "-" for k in keys)] for name, v in variants.items()]
    return lines + _table(["variant", *(f"PSNR {k} (dB)" for k in keys)], rows) + [""]


def _speed(sec: dict, plots: list[str]) -> list[str]:
    lines = ["### Speed", _env_line(sec), ""]
    if sec.get("backends"):
        rows = [[b, f"{v['megapixels_per_s']:.3f}", f"{v['p50_s']:.3f}", f"{v['p95_s']:.3f}", v["runs"]] for b, v in sec["backends"].items()]
        lines += _table(["backend", "MP/s", "latency p50 (s)", "p95 (s)", "runs"], rows)
    if sec.get("ratios"):
        lines += ["", "Ratios measured side by side in the same run:", ""]
        lines += [f"- {k}: **{v:.2f}x**" for k, v in sec["ratios"].items()]
    if sec.get("gpu_batch8_tile256"):
        lines += ["", "The default model on the GPU, 8 tiles of 256x256 per call (median ms; same run):", ""]
        rows = [[k, f"{v['eager_ms']:.2f}", f"{v['cuda_graph_ms']:.2f}"] for k, v in sec["gpu_batch8_tile256"].items()]
        lines += _table(["attention backend-precision", "eager (ms)", "CUDA graph replay (ms)"], rows)
    if sec.get("tradeoff"):
        lines += ["", "Tile size / stride trade-off on the synthetic test split (PSNR vs the sharp photo):", ""]
        rows = [[k, f"{v['seconds']:.2f}", f"{v['psnr_db']:.2f}", v["tiles"]] for k, v in sec["tradeoff"].items()]
        lines += _table(["tile/stride", "time (s)", "PSNR (dB)", "tiles"], rows)
        lines.append(f"\n![trade-off]({plots[0]})" if plots else "")
    if sec.get("prior_steps"):
        lines += ["", "Diffusion prior steps on the synthetic test split:", ""]
        rows = [[k, f"{v['seconds']:.2f}", f"{v['psnr_db']:.2f}"] for k, v in sec["prior_steps"].items()]
        lines += _table(["steps", "time (s)", "PSNR (dB)"], rows)
    lines += ["", *(f"- {n}" for n in sec.get("notes", [])), ""]
    return lines


def _kernels(doc: dict, path: Path) -> list[str]:
    lines = [f"## {path.stem}", "", f"_Triton kernels vs the eager reference and SDPA on {doc['device']}, torch {doc['torch']}, "
             f"triton {doc['triton']}, git {doc['git_revision']}, `{doc['command']}`, {doc['date']}._", ""]
    if doc.get("partial"):
        lines += [f"**Partial run.** {doc['note']}", ""]
    rows = [[k, f"{v['geomean_fp16']:.2f}x", f"{v['min_fp16']:.2f}x", "" if v["target"] is None else f">= {v['target']}x",
             {True: "yes", False: "no", None: ""}[v["met"]]] for k, v in doc["summary"].items()]
    lines += _table(["op / baseline", "fp16 geomean speed-up", "fp16 lowest", "target", "met (geomean)"], rows)
    return lines + ["", f"Every case (tile, level, shift, dtype, median ms): `{path.name}` beside this report's results.", ""]


def _gpu_tiles(doc: dict, path: Path) -> list[str]:
    """A ``bench_gpu.py`` file: per-tile ms and speed-up over fp32 eager, the photo, what was skipped."""
    lines = [f"## {path.stem}", "", f"_Models per tile and end to end on {doc['device']}, torch {doc['torch']}, triton {doc['triton']}, "
             f"git {doc['git_revision']}, `{doc['command']}`, {doc['date']}._", ""]
    if doc.get("partial"):
        lines += [f"**Partial run** (stopped after {doc.get('elapsed_s', '?')} s).", ""]
    for key, summary in doc.get("summary", {}).items():
        model, tile = key.rsplit(" ", 1)
        cells = [c for c in doc["cells"] if c["model"] == model and str(c["tile"]) == tile and "ms_per_tile" in c]
        lines += [f"### {doc['models'].get(model, model)}, {tile} px tiles (batch {cells[0]['batch']})", ""]
        rows = [[c["dtype"], c["mode"], c.get("attention", ""), f"{c['ms_per_tile']:.3f}", f"{summary['speedup_vs_fp32_eager'][c['dtype'] + ' ' + c['mode']]:.2f}x",
                 f"{c['psnr_vs_fp32_eager_db']:.1f}", f"{c['first_call_s']:.1f}"] for c in cells]
        lines += _table(["dtype", "mode", "attention", "ms per tile", "vs fp32 eager", "PSNR vs fp32 eager (dB)", "first call (s)"], rows) + [""]
    photo = [p for p in doc.get("photo", []) if "seconds" in p]
    if photo:
        lines += [f"### End to end: {photo[0]['size']} photo, tile {photo[0]['tile']}, stride {photo[0]['stride']}", ""]
        rows = [[doc["models"].get(p["model"], p["model"]), p["dtype"], p["mode"], f"{p['seconds']:.3f}", f"{p['megapixels_per_s']:.2f}",
                 f"{p['psnr_vs_fp32_eager_db']:.1f}"] for p in photo]
        lines += _table(["model", "dtype", "fastest tile mode", "seconds", "MP/s", "PSNR vs fp32 eager (dB)"], rows) + [""]
    skipped = [c for c in doc["cells"] + doc.get("photo", []) if "skipped" in c or "error" in c]
    if skipped:
        reasons: dict[str, int] = {}
        for c in skipped:
            reason = c.get("skipped") or c.get("error")
            reasons[reason] = reasons.get(reason, 0) + 1
        lines += [f"Not measured: {'; '.join(f'{n} x {r}' for r, n in reasons.items())}.", ""]
    return lines


def _memory(sec: dict, plots: list[str]) -> list[str]:
    lines = ["### Memory (peak RSS of a process deblurring one image, tiled)", _env_line(sec), ""]
    rows = [[f"{v['megapixels']:.2f}", f"{v['width']}x{v['height']}", f"{v['peak_rss_mb']:.0f}", f"{v['seconds']:.1f}"] for v in sec["sizes"]]
    lines += _table(["megapixels", "size", "peak RSS (MB)", "time (s)"], rows)
    lines += ["", f"16 MP / 1 MP peak ratio: **{sec['ratio_16_to_1']:.2f}** (bar: <= 1.3)."]
    repeated = [v for v in sec["sizes"] if len(v.get("peak_rss_mb_runs", ())) > 1]
    lines += [f"The {v['megapixels']:.0f} MP row is the lowest of {len(v['peak_rss_mb_runs'])} runs "
              f"({', '.join(f'{r:.0f}' for r in v['peak_rss_mb_runs'])} MB): heap fragmentation only adds." for v in repeated]
    if plots:
        lines.append(f"\n![memory]({plots[-1]})")
    return lines + [""]


def _server_memory(doc: dict) -> list[str]:
    """Every ``server_memory[label]`` section side by side: increase over the idle server per request."""
    runs = {k.partition("[")[2].rstrip("]") or "latest": v for k, v in doc.items() if k.startswith("server_memory")}
    if not runs:
        return []
    lines = ["### Server memory per request (peak summed RSS of tritonserver and its stubs, above idle)", ""]
    lines += [f"- {label}: {_env_line(sec)[1:-1]}" for label, sec in runs.items()] + [""]
    requests = sorted(next(iter(runs.values()))["requests"], key=lambda r: (" x " in r, float(r.split()[0])))
    rows = [[r, f"{next(iter(runs.values()))['requests'][r]['image_mb']:.0f}",
             *(f"+{sec['requests'][r]['increase_mb']:.0f} MB ({sec['requests'][r]['seconds']:.0f} s)" if r in sec["requests"] else ""
               for sec in runs.values())] for r in requests]
    rows.append(["idle server", "", *(f"{sec['idle_mb']:.0f} MB" for sec in runs.values())])
    rows.append(["goal at 16 MP: image + 1.3x 1 MP", "", *(f"{sec['budget_16mp_mb']:.0f} MB: "
                 f"{'met' if sec['requests']['16 MP']['increase_mb'] <= sec['budget_16mp_mb'] else 'not met'}" for sec in runs.values())])
    rows.append(["asserted bound at 16 MP (copies of the image)", "", *(f"{sec['bound_16mp_mb']:.0f} MB" if "bound_16mp_mb" in sec else ""
                                                                       for sec in runs.values())])
    lines += _table(["request", "image (MB)", *runs], rows)
    notes = list(next(iter(runs.values())).get("notes", []))
    notes.append("where the bytes go (per process) and why the goal is out of reach with Triton's python backend: docs/deploy.md, Memory")
    return lines + ["", *(f"- {n}" for n in notes), ""]


def _server_latency(sec: dict) -> list[str]:
    lines = ["### First request after start vs steady state (the server)", _env_line(sec), ""]
    cold = sec.get("without_warm_up_requests", {}).get("requests", {})
    rows = [[k, f"{v['first_s']:.2f}", f"{v['steady_median_s']:.2f}", f"{v['ratio']:.2f}x",
             f"{cold[k]['ratio']:.2f}x" if k in cold else ""] for k, v in sec["requests"].items()]
    lines += _table(["request", "first (s)", "steady median (s)", "first / steady", "without warm-up requests"], rows)
    cold_start = sec.get("without_warm_up_requests", {}).get("start_s")
    return lines + ["", f"Server start to ready and warm: {sec['start_s']:.1f} s"
                    + (f" ({cold_start:.1f} s without the warm-up requests)" if cold_start else "") + ". Bar: first / steady <= 1.5.", ""]


def _replicas(sec: dict) -> list[str]:
    lines = ["### Replicas behind HAProxy (throughput through the balancer)", _env_line(sec), ""]
    rows = [[k, v["clients"], v["requests"], f"{v['images_per_s']:.2f}", f"{v['median_s']:.2f}"] for k, v in sec["runs"].items()]
    lines += _table(["replicas", "clients", "requests", "images/s", "median latency (s)"], rows)
    return lines + ["", *(f"- {n}" for n in sec.get("notes", [])), ""]


def _int8(sec: dict) -> list[str]:
    lines = ["### INT8 and FP8 (ONNX Runtime, QDQ) against fp32 ONNX Runtime", _env_line(sec), ""]
    rows = [[k, f"{v['fp32_ms_per_tile']:.0f}", f"{v['int8_ms_per_tile']:.0f}", f"{v['speedup']:.2f}x"] for k, v in sec["speed"].items()]
    lines += _table(["per 256x256 tile", "fp32 (ms)", "int8 (ms)", "speed-up"], rows) + [""]
    kinds = [p for p in ("int8", "fp8") if all(f"{p}_vs_fp32_db" in v for v in sec["quality"].values())]
    rows = [[k, f"{v['fp32_vs_target_db']:.2f}"] + [c for p in kinds for c in (
        f"{v[f'{p}_vs_fp32_db']:.1f}", f"{v[f'{p}_vs_target_db']:.2f}", f"{v.get(f'{p}_lost_db', v.get('lost_db', 0)):+.3f}")]
        for k, v in sec["quality"].items()]
    lines += _table(["image", "fp32 vs target (dB)"] + [h for p in kinds for h in (f"{p} vs fp32 (dB)", f"{p} vs target (dB)",
                                                                                   f"{p} lost (dB)")], rows)
    lines += ["", "Goals: " + "; ".join(f"{k}: {'met' if v else 'not met'}" for k, v in sec["goals"].items()) + ".", ""]
    if sec.get("time_by_op"):
        f, q = sec["time_by_op"]["fp32"], sec["time_by_op"]["int8"]
        lines += [f"Where the time goes (ONNX Runtime's profiler at batch {f['batch']}, as `swintormer profile --runtime "
                  f"onnxruntime` prints it): the fp32 graph spends {f['compute_share'] * f['kernel_ms_per_tile']:.0f} ms a tile in "
                  f"convolutions and matmuls, {100 * f['compute_share']:.0f}% of its {f['kernel_ms_per_tile']:.0f} ms of kernels, so "
                  f"int8 arithmetic could make it at most {f['ceiling']:.2f}x faster even at no cost; the int8 graph spends "
                  f"{q['compute_share'] * q['kernel_ms_per_tile']:.0f} ms a tile in them and {100 * q['qdq_share']:.0f}% of its "
                  f"{q['kernel_ms_per_tile']:.0f} ms quantizing and dequantizing (the profiler itself costs time per kernel: "
                  f"unprofiled, the same runs took {f.get('unprofiled_ms_per_tile', 0):.0f} and "
                  f"{q.get('unprofiled_ms_per_tile', 0):.0f} ms a tile).", ""]
    return lines + [*(f"- {n}" for n in sec.get("notes", [])), ""]


def _cpu_backends(sec: dict) -> list[str]:
    lines = [f"### CPU backends per {sec['tile']}x{sec['tile']} tile ({sec['model']}, batch {sec['batch']})", _env_line(sec), ""]
    rows = [[k, f"{v['ms_per_tile']:.1f}", f"{v['vs_torch']:.2f}x", f"{v['psnr_vs_torch_db']:.1f}"] for k, v in sec["rows"].items()]
    lines += _table(["backend precision", "ms per tile", "vs torch eager", "PSNR vs fp32 torch (dB)"], rows)
    settled = ", each after a settling call" if sec.get("settle") else ""
    lines += ["", f"Medians of {sec['repeats']} interleaved repeats{settled}; torch eager is the reference (the upstream code's "
              "speed within 7% here)."]
    if sec.get("goals"):
        lines += ["Goals: " + "; ".join(f"{k}: {'met' if v else 'not met'}" for k, v in sec["goals"].items()) + "."]
    return lines + ["", *(f"- {n}" for n in sec.get("notes", [])), ""]


def _photo_floor(sec: dict) -> list[str]:
    lines = [f"### One photo ({sec['photo']}) against its fp32 roofline floor", _env_line(sec), ""]
    lines += [f"{sec['tiles']} tiles of {sec['gflop_per_tile']:.2f} GFLOP at the fp32 matmul rate measured in the same run "
              f"({sec['fp32_peak_gflops']:.0f} GFLOP/s): a floor of **{sec['floor_s']:.2f} s**.", ""]
    rows = [[k, f"{v['seconds']:.2f}", f"{v['vs_floor']:.2f}x", f"{v['peak_rss_mb']:.0f}", f"{v['psnr_vs_torch_db']:.1f}"]
            for k, v in sec["rows"].items()]
    lines += _table(["backend precision", "computed (s)", "vs floor", "peak RSS (MB)", "PSNR vs fp32 torch (dB)"], rows)
    lines += ["", "Goals: " + "; ".join(f"{k}: {'met' if v else 'not met'}" for k, v in sec["goals"].items()) + "."]
    return lines + ["", *(f"- {n}" for n in sec.get("notes", [])), ""]


def _estimate(sec: dict) -> list[str]:
    lines = ["### Roofline estimate (not a measurement)", _env_line(sec), ""]
    rows = [[k, v["model"], v["precision"], f"{v['gflop_per_tile']:.1f}", f"{v['mbytes_per_tile']:.0f}", f"{v['tiles_per_s']:.0f}", v["bound"]]
            for k, v in sec["estimates"].items()]
    lines += _table(["device", "model", "precision", "GFLOP/tile", "MB/tile", "tiles/s (estimate)", "bound by"], rows)
    return lines + ["", *(f"- {n}" for n in sec.get("notes", [])), ""]


def _plots(doc: dict, stem: str, folder: Path) -> list[str]:
    """Write the trade-off and memory plots into ``folder``; returns their paths."""
    speed, mem = doc.get("speed", {}), doc.get("memory", {})
    if not (speed.get("tradeoff") or mem.get("sizes")):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    if speed.get("tradeoff"):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for k, v in speed["tradeoff"].items():
            ax.scatter(v["seconds"], v["psnr_db"])
            ax.annotate(k, (v["seconds"], v["psnr_db"]), fontsize=8)
        if speed.get("prior_steps"):
            xs = [v["seconds"] for v in speed["prior_steps"].values()]
            ys = [v["psnr_db"] for v in speed["prior_steps"].values()]
            ax.plot(xs, ys, "o--", label="prior steps")
            for k, x, y in zip(speed["prior_steps"], xs, ys):
                ax.annotate(f"T={k}", (x, y), fontsize=8)
            ax.legend()
        ax.set_xlabel("seconds per image set")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title("time vs quality")
        fig.tight_layout()
        names.append(folder / f"{stem}-tradeoff.png")
        fig.savefig(names[-1], dpi=110)
        plt.close(fig)
    if mem.get("sizes"):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([v["megapixels"] for v in mem["sizes"]], [v["peak_rss_mb"] for v in mem["sizes"]], "o-")
        ax.set_xscale("log")
        ax.set_xlabel("image size (megapixels)")
        ax.set_ylabel("peak RSS (MB)")
        ax.set_ylim(bottom=0)
        ax.set_title("memory vs image size (tiled)")
        fig.tight_layout()
        names.append(folder / f"{stem}-memory.png")
        fig.savefig(names[-1], dpi=110)
        plt.close(fig)
    return names


def write_report(out: Path, results: Path = RESULTS) -> Path:
    """Write ``out`` from every ``results/*.json`` (plots into ``results/plots/``); returns ``out``."""
    where = "`benchmarks/results/*.json` (`pytest benchmarks/ --record` rewrites both)" if results == RESULTS else "this run folder's JSON"
    lines = ["# Benchmarks", "", f"Generated by `benchmarks/report.py` from {where}. "
             "Every number below comes from the run named beside it.", ""]
    for path in sorted(results.glob("*.json")):
        doc = json.loads(path.read_text())
        if "results" in doc and "peaks" in doc:  # a kernel benchmark file (GPU): its summary, the rows linked
            lines += _kernels(doc, path)
            continue
        if doc.get("kind") == "gpu_tiles":  # bench_gpu.py's file
            lines += _gpu_tiles(doc, path)
            continue
        plots = [os.path.relpath(p, out.parent) for p in _plots(doc, path.stem, results / "plots")]
        lines += [f"## {path.stem}", ""]
        for key, fn in (("cost", _cost), ("parity", _parity), ("parity_full_size", _parity_full), ("speed", lambda s: _speed(s, plots)),
                        ("memory", lambda s: _memory(s, plots)), ("server_latency", _server_latency), ("replicas", _replicas), ("int8", _int8),
                        ("cpu_backends", _cpu_backends), ("cpu_backends_full_size", _cpu_backends), ("photo_floor", _photo_floor),
                ("estimate", _estimate)):
            if key in doc:
                lines += fn(doc[key])
        lines += _server_memory(doc)
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out


if __name__ == "__main__":
    folder = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else RESULTS
    print(write_report(HERE.parent / "BENCHMARKS.md" if folder == RESULTS else folder / "BENCHMARKS.md", folder))
    sys.exit(0)
