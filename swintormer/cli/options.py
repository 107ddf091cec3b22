"""Argument groups shared by several sub-commands, so every command spells them the same way."""

from __future__ import annotations

import argparse

from swintormer.inference import TileOptions
from swintormer.tiling import DEFAULT_STRIDE, DEFAULT_TILE

__all__ = ["add_model_options", "add_prior_options", "add_tile_options", "tile_options"]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        metavar="NAME",
        help="registered variant (see `swintormer models`); default: the bundled model, or the one a checkpoint names",
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


def tile_options(args: argparse.Namespace) -> TileOptions:
    return TileOptions(tile=args.tile, stride=args.stride, batch=args.batch, blend=args.blend)


def add_prior_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("diffusion prior (models with a prior only)")
    group.add_argument(
        "--prior-steps", type=int, default=None, metavar="N",
        help="DDIM steps for the prior (0 = the encoder latent without sampling; default: the checkpoint's)",
    )
    group.add_argument("--seed", type=int, default=None, help="noise seed of the prior sampler (default: the checkpoint's)")
