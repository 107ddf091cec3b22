"""``swintormer deblur``: restore image files with the PyTorch model."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from swintormer.cli.options import (
    add_backend_options,
    add_model_options,
    add_prior_options,
    add_tile_options,
    image_jobs,
    model_tile_fn,
    tile_options,
)
from swintormer.errors import SwintormerError

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer deblur photo.jpg -o photo_sharp.png
  swintormer deblur shots/*.png -o restored/ --tile 512 --stride 220
  swintormer deblur --right R.png --left L.png -o out.png --model swintormer-dpdd --checkpoint net_g.pth
"""

_DTYPES = {8: np.uint8, 16: np.uint16}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deblur",
        help="deblur image files",
        description="Deblur images (PNG, JPEG, TIFF, BMP, WebP; 8 or 16 bit) with tiled inference.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders of images (single-image models)")
    p.add_argument("--left", metavar="PATH", help="left dual-pixel view (dual-pixel models, with --right)")
    p.add_argument("--right", metavar="PATH", help="right dual-pixel view (dual-pixel models, with --left)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    p.add_argument("--bit-depth", choices=("same", "8", "16"), default="same", help="output bits per channel (default: as the input)")
    p.add_argument("--compare", action="store_true", help="also write OUT_compare.png: input and result side by side")
    add_model_options(p)
    add_tile_options(p)
    add_prior_options(p)
    add_backend_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.imageio import dual_pixel_stack, read_image, write_image
    from swintormer.inference import deblur_array
    from swintormer.visualize import side_by_side

    jobs = image_jobs(args)
    model, settings, tile_fn = model_tile_fn(args)
    options = tile_options(args)
    where = args.device if args.backend == "torch" else f"onnxruntime/{args.provider}"
    channels = model.in_channels
    if model.has_prior:
        log.info("diffusion prior: %d DDIM steps, eta %.2f, seed %d", settings.steps, settings.eta, settings.seed)
    for inputs, out_path in jobs:
        images = [read_image(p) for p in inputs]
        array = dual_pixel_stack(*images) if len(images) == 2 else images[0].array
        if array.shape[2] != channels:
            hint = "pass the two views with --right and --left" if channels == 6 else "pass a single RGB image"
            raise SwintormerError(f"this model takes {channels}-channel input, {inputs[0]} gives {array.shape[2]}; {hint}")
        depth = images[0].bit_depth if args.bit_depth == "same" else int(args.bit_depth)
        start = time.perf_counter()
        restored = deblur_array(array, tile_fn, options, out_channels=3, out_dtype=_DTYPES.get(depth, np.uint16))
        elapsed = time.perf_counter() - start
        write_image(out_path, restored)
        h, w = restored.shape[:2]
        log.info("wrote %s (%dx%d, %.2f s on %s)", out_path, w, h, elapsed, where)
        if args.compare:
            compare = out_path.with_name(out_path.stem + "_compare.png")
            write_image(compare, side_by_side([array[:, :, :3], restored], ["input", "deblurred"]))
            log.info("wrote %s", compare)
    return 0
