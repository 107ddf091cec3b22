"""Argument groups shared by several sub-commands, so every command spells them the same way."""

from __future__ import annotations

import argparse
from pathlib import Path

from swintormer.errors import SwintormerError

from swintormer.inference import TileOptions
from swintormer.tiling import DEFAULT_STRIDE, DEFAULT_TILE

__all__ = [
    "add_backend_options",
    "add_model_options",
    "add_prior_options",
    "add_tile_options",
    "image_jobs",
    "model_tile_fn",
    "tile_options",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        metavar="NAME",
        help="registered variant (see `swintormer models`: those marked * or + ship with weights); "
        "default: the bundled default, or the one a checkpoint names",
    )
    group.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="our .safetensors (config inside), or an upstream .pth/.pt/.safetensors together with --model",
    )
    group.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N (default: auto)")


def add_tile_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tiling")
    group.add_argument(
        "--tile", type=int, default=DEFAULT_TILE,
        help=f"tile size in pixels, a multiple of what the model needs (swintormer: 16*window); 0 = whole image (default {DEFAULT_TILE})",
    )
    group.add_argument(
        "--stride", type=int, default=DEFAULT_STRIDE,
        help=f"step between tiles; tile - stride pixels overlap (default {DEFAULT_STRIDE}: 36 px, as the reference)",
    )
    group.add_argument("--batch", type=int, default=8, help="tiles per forward pass (default 8)")
    group.add_argument(
        "--blend", choices=("uniform", "feather"), default="uniform",
        help="merge overlaps by plain averaging (the paper) or a ramp over the overlap (default uniform)",
    )


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                       help="PyTorch, or ONNX Runtime over the exported graphs (exported on first use; default torch)")
    group.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="ONNX graph precision (onnxruntime)")
    group.add_argument("--provider", choices=("cpu", "cuda", "tensorrt"), default="cpu",
                       help="ONNX Runtime execution provider; cuda/tensorrt need onnxruntime-gpu (default cpu)")


def model_tile_fn(args: argparse.Namespace):
    """``(model, prior settings, tile function)`` from the model, prior, tiling and backend options."""
    from swintormer.inference import backend_tile_fn, check_tile, resolve_model

    model = resolve_model(args.model, args.checkpoint)
    settings = model.settings(args.prior_steps, args.seed)
    options = tile_options(args)
    check_tile(model, options.tile)
    fn = backend_tile_fn(model, args.backend, options, settings, args.device, args.precision, args.provider)
    return model, settings, fn


def tile_options(args: argparse.Namespace) -> TileOptions:
    return TileOptions(tile=args.tile, stride=args.stride, batch=args.batch, blend=args.blend)


def add_prior_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("diffusion prior (models with a prior only)")
    group.add_argument(
        "--prior-steps", type=int, default=None, metavar="N",
        help="DDIM steps for the prior (0 = the encoder latent without sampling; default: the checkpoint's)",
    )
    group.add_argument("--seed", type=int, default=None, help="noise seed of the prior sampler (default: the checkpoint's)")


def _expand(inputs: list[str]) -> list[Path]:
    """Files as given; folders replaced by the images in them (sorted)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(item)
    return files


def image_jobs(args: argparse.Namespace) -> list[tuple[list[Path], Path]]:
    """``[(input paths, output path)]`` from ``inputs``/``--left``/``--right``/``-o``: one job per image
    (a dual-pixel pair is one job of two inputs, right view first). ``-o`` is a file for one input,
    else a folder; an output never overwrites an input, and two inputs never share an output.
    """
    out = Path(args.output)
    as_file = out.suffix != "" and not out.is_dir()
    if args.left or args.right:
        if not (args.left and args.right) or args.inputs:
            raise SwintormerError("dual-pixel input needs both --left and --right and no other inputs")
        pair = [Path(args.right), Path(args.left)]
        jobs = [(pair, out if as_file else out / f"{pair[0].stem}.png")]
    else:
        files = _expand(args.inputs)
        if not files:
            raise SwintormerError("no input images (give files, folders of images, or --left/--right for dual-pixel models)")
        if as_file and len(files) > 1:
            raise SwintormerError(f"{len(files)} inputs need an output folder, but {out} looks like a file name")
        jobs = [([f], out if as_file else out / f.name) for f in files]
    outputs = [o.resolve() for _, o in jobs]
    if len(set(outputs)) != len(outputs):
        raise SwintormerError("two inputs have the same file name and would write the same output; deblur them separately")
    clash = {o for o in outputs} & {p.resolve() for ins, _ in jobs for p in ins}
    if clash:
        raise SwintormerError(f"refusing to overwrite the input {sorted(clash)[0]}; choose another output")
    return jobs
