"""Argument groups shared by several sub-commands, so every command spells them the same way."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from swintormer.backends import BACKENDS, PROVIDERS, BackendRequest
from swintormer.errors import SwintormerError
from swintormer.tiling import Blend, TilingConfig

__all__ = [
    "add_backend_options",
    "add_inference_options",
    "add_output_options",
    "add_model_options",
    "add_prior_options",
    "add_threads_option",
    "add_tile_options",
    "apply_threads",
    "backend_request",
    "image_jobs",
    "load_model",
    "model_tile_fn",
    "tiling_config",
]

DEFAULTS = TilingConfig()

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
        help="our .safetensors (config inside), or an upstream Swintormer/Restormer .pth/.pt/.safetensors "
        "(its architecture is read from the weights; with --model, it must be that variant)",
    )
    group.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N (default: auto)")


def load_model(args: argparse.Namespace):
    """The :class:`~swintormer.model.DeblurModel` the ``--model``/``--checkpoint`` options name."""
    from swintormer.model import DeblurModel

    return DeblurModel.load(args.checkpoint, expect=args.model)


def add_tile_options(parser: argparse.ArgumentParser, batch_help: str = "tiles per forward pass") -> None:
    group = parser.add_argument_group("tiling")
    group.add_argument(
        "--tile", type=int, default=DEFAULTS.tile,
        help=f"tile size in pixels, a multiple of what the model needs (swintormer: 16*window); 0 = whole image (default {DEFAULTS.tile})",
    )
    group.add_argument(
        "--stride", type=int, default=DEFAULTS.stride,
        help=f"step between tiles; tile - stride pixels overlap (default {DEFAULTS.stride}: {DEFAULTS.tile - DEFAULTS.stride} px, as the reference)",
    )
    group.add_argument("--batch", type=int, default=DEFAULTS.batch, help=f"{batch_help} (default {DEFAULTS.batch})")
    group.add_argument(
        "--blend", choices=[b.value for b in Blend], default=DEFAULTS.blend.value,
        help=f"merge overlaps by plain averaging (the paper) or a ramp over the overlap (default {DEFAULTS.blend.value})",
    )


def tiling_config(args: argparse.Namespace) -> TilingConfig:
    return TilingConfig(tile=args.tile, stride=args.stride, blend=args.blend, batch=args.batch)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads for the computation (default 0: the runtime's choice, one per core); "
                        "1 keeps a shared machine responsive")


def apply_threads(args: argparse.Namespace) -> int:
    """Set torch's thread count from ``--threads`` (0 leaves it); returns the count."""
    import torch

    if args.threads < 0:
        raise SwintormerError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    return args.threads


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backend")
    lines = "; ".join(f"{b.name}: {b.description}" for b in BACKENDS.values())
    default = os.environ.get("SWINTORMER_BACKEND", "auto")
    group.add_argument("--backend", choices=["auto", *BACKENDS], default=default,
                       help=f"auto: the fastest installed here (GPU: tensorrt, torch; CPU: openvino, onnxruntime, torch; "
                       f"graphs are exported once, on first use); {lines} (default {default}; $SWINTORMER_BACKEND sets it)")
    precisions = sorted({p for b in BACKENDS.values() for p in b.precisions})
    group.add_argument("--precision", choices=precisions, default="fp32",
                       help="precision per backend: " + ", ".join(f"{b.name} {'/'.join(b.precisions)}" for b in BACKENDS.values()) + " (default fp32)")
    group.add_argument("--provider", choices=list(PROVIDERS), default="cpu",
                       help="ONNX Runtime execution provider; cuda/tensorrt need onnxruntime-gpu (default cpu)")
    add_threads_option(group)


def backend_request(args: argparse.Namespace, settings=None) -> BackendRequest:
    return BackendRequest(device=args.device, precision=args.precision, provider=args.provider, settings=settings,
                          threads=apply_threads(args))


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    """Model, tiling, prior and backend options: everything a command that deblurs needs."""
    add_model_options(parser)
    add_tile_options(parser)
    add_prior_options(parser)
    add_backend_options(parser)


def model_tile_fn(args: argparse.Namespace):
    """``(model, prior settings, tile function, where it runs)`` from the model, prior, tiling and backend options."""
    from swintormer.backends import resolve_backend
    from swintormer.inference import describe, tile_function

    tiling = tiling_config(args)
    model = load_model(args)
    settings = model.settings(args.prior_steps, args.seed)
    request = backend_request(args, settings)
    backend = resolve_backend(args.backend, request)
    fn = tile_function(model, backend, tiling, request)
    return model, settings, fn, describe(backend, request)


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


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that exist (default: skip them with a note, so a rerun resumes a folder)")


def _is_file_name(out: Path) -> bool:
    """``-o`` names a file (one input, an image suffix, not a folder), else a folder."""
    from swintormer.imageio import WRITABLE

    if out.is_dir():
        return False
    if out.suffix.lower() in WRITABLE:
        return True
    if out.exists() or out.suffix:
        raise SwintormerError(
            f"cannot write {out}: unknown extension, and not a folder; give a folder or a file name ending in "
            f"one of {', '.join(sorted(WRITABLE))}"
        )
    return False


def image_jobs(args: argparse.Namespace, extra_outputs=lambda out: []) -> list[tuple[list[Path], Path]]:
    """``[(input paths, output path)]`` from ``inputs``/``--left``/``--right``/``-o``: one job per image
    (a dual-pixel pair is one job of two inputs, right view first).

    ``-o`` is a file for one input, else a folder. No output (nor any of ``extra_outputs(out)``,
    e.g. a comparison image) may be an input, even through a link; two jobs never share an
    output; an output that exists is skipped (with a note) unless ``--overwrite``.
    """
    from swintormer.files import check_output

    out = Path(args.output)
    if args.left or args.right:
        if not (args.left and args.right) or args.inputs:
            raise SwintormerError("dual-pixel input needs both --left and --right and no other inputs")
        pair = [Path(args.right), Path(args.left)]
        jobs = [(pair, out if _is_file_name(out) else out / f"{pair[0].stem}.png")]
    else:
        files = _expand(args.inputs)
        if not files:
            raise SwintormerError("no input images (give files, folders of images, or --left/--right for dual-pixel models)")
        as_file = _is_file_name(out)
        if as_file and len(files) > 1:
            raise SwintormerError(f"{len(files)} inputs need an output folder, but {out} looks like a file name")
        jobs = [([f], out if as_file else out / f.name) for f in files]
    outputs = [o.absolute() for _, o in jobs]
    if len(set(outputs)) != len(outputs):
        raise SwintormerError("two inputs have the same file name and would write the same output; deblur them separately")
    inputs = [p for ins, _ in jobs for p in ins]
    kept = []
    for ins, target in jobs:
        extras = list(extra_outputs(target))
        for extra in extras:
            check_output(extra, inputs, overwrite=True)  # never an input; replaced along with its image
        if check_output(target, inputs, getattr(args, "overwrite", False)):
            kept.append((ins, target))
    return kept
