"""``swintormer deblur``: restore image files on any backend through the shared tiler."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from swintormer.cli.options import add_inference_options, add_output_options, image_jobs, model_tile_fn, tiling_config
from swintormer.errors import SwintormerError

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer deblur photo.jpg -o photo_sharp.png
  swintormer deblur shots/*.png -o restored/ --tile 512 --stride 220
  swintormer deblur --right R.png --left L.png -o out.png --checkpoint net_g.pth   # an upstream file, as is
  swintormer deblur photo.jpg -o sharp.png --backend onnxruntime --threads 2

Grayscale images are restored as RGB and written back grayscale; 16-bit files stay 16-bit
unless --bit-depth says otherwise. Results come out upright (the input's EXIF orientation is
applied), keep the input's colour profile (PNG and JPEG outputs) and its alpha channel,
unchanged (PNG, TIFF and WebP outputs).
"""

_DTYPES = {8: np.uint8, 16: np.uint16}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deblur",
        help="deblur image files",
        description="Deblur images (PNG, JPEG, TIFF, BMP, WebP; 8 or 16 bit; RGB or grayscale) with tiled inference.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders of images (single-image models)")
    p.add_argument("--left", metavar="PATH", help="left dual-pixel view (dual-pixel models, with --right)")
    p.add_argument("--right", metavar="PATH", help="right dual-pixel view (dual-pixel models, with --left)")
    add_output_options(p)
    p.add_argument("--bit-depth", choices=("same", "8", "16"), default="same", help="output bits per channel (default: as the input)")
    p.add_argument("--compare", action="store_true", help="also write OUT_compare.png: input and result side by side")
    add_inference_options(p)
    p.set_defaults(func=run)


def _compare_path(out: Path) -> Path:
    return out.with_name(out.stem + "_compare.png")


def _deblur_one(inputs: list[Path], out_path: Path, args: argparse.Namespace, model, tile_fn, tiling, where: str) -> int:
    """Deblur one image (or dual-pixel pair) and write it; returns the pixel count."""
    from swintormer.imageio import dual_pixel_stack, read_image, write_image
    from swintormer.tiling import gray_tile_fn, tiled_apply
    from swintormer.visualize import side_by_side

    images = [read_image(p) for p in inputs]
    array = dual_pixel_stack(*images) if len(images) == 2 else images[0].array
    channels = model.in_channels
    if array.shape[2] != channels:
        hint = "pass the two views with --right and --left" if channels == 6 else "pass a single RGB image"
        raise SwintormerError(f"this model takes {channels}-channel input, {inputs[0]} gives {array.shape[2]}; {hint}")
    depth = images[0].bit_depth if args.bit_depth == "same" else int(args.bit_depth)
    gray = all(im.mode == "gray" for im in images)
    start = time.perf_counter()
    restored = tiled_apply(gray_tile_fn(tile_fn) if gray else tile_fn, array, 1 if gray else 3, tiling, out_dtype=_DTYPES.get(depth, np.uint16))
    elapsed = time.perf_counter() - start
    alpha = images[0].alpha if len(images) == 1 else None  # transparency is carried over, not deblurred
    write_image(out_path, restored, alpha=alpha, icc_profile=images[0].icc_profile)
    h, w = restored.shape[:2]
    log.info("wrote %s (%dx%d%s, %.2f s on %s)", out_path, w, h, ", grayscale" if gray else "", elapsed, where)
    if args.compare:
        shown = np.repeat(restored, 3, axis=2) if gray else restored
        write_image(_compare_path(out_path), side_by_side([array[:, :, :3], shown], ["input", "deblurred"]),
                    icc_profile=images[0].icc_profile)
        log.info("wrote %s", _compare_path(out_path))
    return h * w


def run(args: argparse.Namespace) -> int:
    jobs = image_jobs(args, extra_outputs=lambda out: [_compare_path(out)] if args.compare else [])
    if not jobs:
        log.info("nothing to do: every output exists (--overwrite replaces them)")
        return 0
    tiling = tiling_config(args)
    model, settings, tile_fn, where = model_tile_fn(args)
    if model.has_prior:
        log.info("diffusion prior: %d DDIM steps, eta %.2f, seed %d", settings.steps, settings.eta, settings.seed)
    start, pixels, failed = time.perf_counter(), 0, 0
    for inputs, out_path in jobs:
        try:
            pixels += _deblur_one(inputs, out_path, args, model, tile_fn, tiling, where)
        except SwintormerError as exc:
            if len(jobs) == 1:
                raise
            log.error("%s", exc)  # one line for this image; the others go on
            failed += 1
    total_s = time.perf_counter() - start
    if len(jobs) > 1:
        log.info("deblurred %d of %d images (%.1f MP) in %.1f s on %s (%.2f MP/s)", len(jobs) - failed, len(jobs),
                 pixels / 1e6, total_s, where, pixels / 1e6 / max(total_s, 1e-9))
    return 2 if failed else 0
