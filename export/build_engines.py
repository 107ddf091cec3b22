#!/usr/bin/env python3
"""Build everything a deployment needs from one checkpoint.

    python export/build_engines.py                      # the bundled default model, CPU flavour
    python export/build_engines.py --checkpoint my.safetensors --precision fp16 --flavour gpu

Exports each component (restorer; encoder and denoiser for prior models) to ONNX, verifies every
graph against PyTorch with ONNX Runtime (max abs error, PSNR) and against TensorRT's ONNX
operator support, builds TensorRT engines when TensorRT and a GPU are present (and says why not
otherwise), and writes the Triton model repository. Artifacts are cached by what produced them,
so a second run with the same inputs is mostly cache hits.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

# Run as a script, this folder is sys.path[0]; its module names (build, cache, specs, ...) must not
# shadow third-party modules, and the package is imported as swintormer.export instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

log = logging.getLogger("build_engines")

EPILOG = """examples:
  python export/build_engines.py
  python export/build_engines.py --model swintormer-dpdd --checkpoint net_g.pth --tile 512 --max-batch 4
  python export/build_engines.py --precision fp16 --flavour gpu --out /models/swintormer

then:
  swintormer serve --repository model_repository
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from swintormer.cli.options import add_model_options

    p = argparse.ArgumentParser(
        prog="python export/build_engines.py", description=__doc__.split("\n\n")[0],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(p)
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="graph precision (fp16 keeps norms/softmax in fp32; default fp32)")
    p.add_argument("--tile", type=int, default=256, help="restorer tile size, fixed in the graphs (default 256)")
    p.add_argument("--stride", type=int, default=220, help="tile step the server uses (default 220)")
    p.add_argument("--max-batch", type=int, default=8, help="largest tile batch of the graphs/engines (default 8)")
    p.add_argument("--dynamic-hw", action="store_true", help="restorer graph/engine takes any size from --tile to 4x --tile (models without a prior)")
    p.add_argument("--prior-steps", type=int, default=None, help="DDIM steps the server's prior runs (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=None, help="noise seed of the server's prior (default: the checkpoint's)")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096, help="largest image the server accepts (default 16 MP)")
    p.add_argument("--blend", choices=("uniform", "feather"), default="uniform", help="tile merge in the server (default uniform)")
    p.add_argument("--flavour", choices=("cpu", "gpu"), default="cpu", help="cpu: ONNX Runtime inside python models; gpu: tensorrt_plan models (default cpu)")
    p.add_argument("--out", default="model_repository", help="Triton model repository to write (default model_repository/)")
    p.add_argument("--force", action="store_true", help="re-export and rebuild even when cached")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def _check_writable(folder: Path) -> None:
    from swintormer.errors import SwintormerError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SwintormerError(f"cannot write the model repository to {folder}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    from swintormer.errors import SwintormerError
    from swintormer.export.build import build_engines, export_components, specs_for, verify_components, write_model_repository
    from swintormer.export.specs import Precision
    from swintormer.inference import resolve_model
    from swintormer.serving.steps import ServingLimits

    start = time.perf_counter()
    out = Path(args.out)
    log.info("[1/5] model")
    model = resolve_model(args.model, args.checkpoint)
    settings = model.settings(args.prior_steps, args.seed)
    specs = specs_for(model, args.tile, args.max_batch, args.dynamic_hw)
    if not 0 < args.stride <= args.tile:
        raise SwintormerError(f"--stride must be in (0, --tile], got {args.stride}")
    _check_writable(out)
    if args.flavour == "gpu":
        from swintormer.export.trt_engine import tensorrt_status

        usable, why = tensorrt_status()
        if not usable:
            raise SwintormerError(f"the gpu flavour needs TensorRT engines, but {why}; build it on a GPU machine or use --flavour cpu")
    parts = ", ".join(f"{k} {sum(p.numel() for p in m.parameters()) / 1e6:.2f}M" for k, m in model.components().items())
    log.info("  %s (%s), tile %d, batch <= %d%s", model.name or "model", parts, args.tile, args.max_batch,
             f", prior {settings.steps} DDIM steps" if model.has_prior else "")
    precision = Precision(args.precision)
    log.info("[2/5] ONNX export (%s)", precision.value)
    onnx_files = export_components(model, specs, precision, args.force)
    log.info("[3/5] verification")
    verify_components(model, specs, onnx_files, precision)
    log.info("[4/5] TensorRT engines")
    engines = build_engines(model, specs, onnx_files, precision, args.force)
    log.info("[5/5] Triton model repository (%s flavour)", args.flavour)
    limits = ServingLimits(model.in_channels, args.max_pixels, args.tile, args.stride, args.blend)
    artifacts = engines if args.flavour == "gpu" else onnx_files
    names = write_model_repository(out, model, specs, artifacts, args.flavour, limits, settings)
    log.info("  %d models in %s: %s", len(names), out, ", ".join(names))
    log.info("done in %.1f s; serve it with: swintormer serve --repository %s", time.perf_counter() - start, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    from swintormer.cli import run_guarded

    return run_guarded(run, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
