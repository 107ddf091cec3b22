"""``swintormer eval``: PSNR/SSIM/MAE (+LPIPS) per image and per indoor/outdoor/combined category."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from swintormer.cli.options import add_inference_options, model_tile_fn, tiling_config
from swintormer.errors import SwintormerError

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer synth --out data/synth && swintormer eval --data data/synth -o out/eval --baseline unsharp
  swintormer eval --data DPDD --checkpoint net_g.pth --tile 512 --stride 220 -o out/eval-dpdd
  swintormer eval --data data/synth --backend onnxruntime --threads 1    # one core: a shared machine stays usable
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a model (and baselines) on a DPDD-layout folder",
        description="Deblur every image of a DPDD-layout split and report PSNR, SSIM, MAE (LPIPS when available "
        "locally) per image and per indoor/outdoor/combined category, as OUT/report.json, OUT/report.md and "
        "before/after/error figures in OUT/figures/.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, metavar="DIR", help="a DPDD-layout root (its SPLIT/ is used) or a split folder")
    p.add_argument("--split", default="test", help="split folder under DIR (default test)")
    p.add_argument("-o", "--output", default="out/eval", metavar="OUT", help="report folder (default out/eval)")
    p.add_argument("--figures", type=int, default=3, metavar="N", help="write figures for N images spread over the split (default 3)")
    p.add_argument("--baseline", choices=("unsharp",), action="append", default=[], help="also evaluate a tuned unsharp mask")
    p.add_argument("--unsharp", type=float, nargs=2, metavar=("SIGMA", "AMOUNT"), help="unsharp-mask settings (default: tuned on the training photographs)")
    p.add_argument("--no-model", action="store_true", help="evaluate only the input and the baselines")
    p.add_argument("--dual-pixel", action="store_true", help="with --no-model: read the dual-pixel views")
    add_inference_options(p)
    p.set_defaults(func=run)


def _model_method(args: argparse.Namespace):
    """``(label, tile function, input channels)`` of the model the user asked for."""
    model, settings, fn, _ = model_tile_fn(args)
    label = model.name or args.model or "model"
    if args.checkpoint:
        label += f" ({Path(args.checkpoint).name})"
    if model.has_prior:
        label += f" (prior, {settings.steps} steps)"
    if args.backend != "torch":
        label += f" [{args.backend} {args.precision}]"
    return label, fn, model.in_channels


def _unsharp_params(args: argparse.Namespace):
    from swintormer.data.synthetic import TEST_LEVELS
    from swintormer.evaluation.baselines import UnsharpParams, training_tuning_pairs, tune_unsharp

    if args.unsharp:
        return UnsharpParams(*args.unsharp)
    log.info("tuning the unsharp mask on the training photographs at blur levels %s", ", ".join(f"{v:g}" for v in TEST_LEVELS))
    return tune_unsharp(training_tuning_pairs(TEST_LEVELS))


def run(args: argparse.Namespace) -> int:
    from swintormer.data.dpdd import find_split, mode_for_channels, scan_split
    from swintormer.evaluation.baselines import unsharp_tile_fn
    from swintormer.evaluation.evaluate import evaluate_split, load_lpips
    from swintormer.evaluation.report import report_markdown, write_report

    if args.no_model and not args.baseline:
        raise SwintormerError("--no-model leaves nothing to evaluate but the input; add --baseline unsharp")
    methods, settings, channels = {}, {"tile": args.tile, "stride": args.stride, "blend": args.blend}, 6 if args.dual_pixel else 3
    if "unsharp" in args.baseline:
        params = _unsharp_params(args)
        methods["unsharp mask"] = unsharp_tile_fn(params)
        settings["unsharp"] = {"sigma": params.sigma, "amount": params.amount, "tuned_psnr": params.tuned_psnr}
    if not args.no_model:
        label, fn, channels = _model_method(args)
        methods[label] = fn
        settings["model"] = label
    split = scan_split(find_split(args.data, args.split), mode_for_channels(channels))
    lpips_metric, note = load_lpips()
    log.info(note)
    names = [p.name for p in split.pairs]
    chosen = {names[int(i)] for i in _spread(len(names), args.figures)}
    report, kept = evaluate_split(split, methods, tiling_config(args), lpips_metric, keep=chosen.__contains__)
    report.notes.append(note)
    report.settings.update(settings)
    paths = write_report(report, args.output, kept, title=f"Evaluation on {split.folder}")
    summary = report_markdown(report).split("### Per image")[0].strip().splitlines()[2:]
    for line in summary:
        log.info("%s", line)
    log.info("wrote %s", ", ".join(str(p) for p in paths[:2]) + (f" and {len(paths) - 2} figures" if len(paths) > 2 else ""))
    return 0


def _spread(count: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(count)``."""
    if n <= 0 or count == 0:
        return []
    n = min(n, count)
    return sorted({round(i * (count - 1) / max(n - 1, 1)) for i in range(n)})
