"""``swintormer demo``: the README's main job on the bundled model and sample photograph."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="deblur the bundled sample with the bundled model and write a before/after picture",
        description="Deblur the bundled sample photograph (a synthetic disk defocus of a real photo) with the "
        "bundled default model; write the result and a blurry/deblurred/sharp comparison, print PSNR and time.",
    )
    p.add_argument("-o", "--output", default="out/demo", metavar="DIR", help="output folder (default out/demo)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.imageio import read_image, write_image
    from swintormer.inference import ASSETS, TileOptions, deblur_array, resolve_device, resolve_model, torch_tile_fn
    from swintormer.metrics import psnr
    from swintormer.visualize import side_by_side

    out = Path(args.output)
    blurry = read_image(ASSETS / "sample_blurry.png")
    sharp = read_image(ASSETS / "sample_sharp.png")
    model = resolve_model()
    device = resolve_device(args.device)
    start = time.perf_counter()
    restored = deblur_array(blurry.array, torch_tile_fn(model, device), TileOptions(), out_dtype=np.float32)
    elapsed = time.perf_counter() - start
    write_image(out / "deblurred.png", restored.clip(0, 1), bit_depth=8)
    compare = side_by_side([blurry.array, restored.clip(0, 1), sharp.array], ["blurry input", "deblurred", "sharp reference"])
    write_image(out / "compare.png", compare)
    before, after = psnr(blurry.pixels, sharp.pixels), psnr(restored.clip(0, 1), sharp.pixels)
    h, w = restored.shape[:2]
    log.info("deblurred %s (%dx%d) in %.2f s on %s", blurry.path.name, w, h, elapsed, device)
    log.info("PSNR vs sharp reference: blurry %.2f dB -> deblurred %.2f dB (%+.2f dB)", before, after, after - before)
    log.info("wrote %s and %s", out / "deblurred.png", out / "compare.png")
    return 0
