"""``swintormer convert``: upstream checkpoint -> our .safetensors (weights + config)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer convert net_g_latest.pth -o swintormer-dpdd.safetensors             # architecture read from the weights
  swintormer convert single_image_defocus_deblurring.pth --model restormer-defocus-single -o restormer.safetensors
  swintormer convert custom.pth --arch swintormer --config '{"window_size": 8, "inp_channels": 6}' -o custom.safetensors
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert an upstream Swintormer/Restormer checkpoint to our format",
        description="Read an upstream checkpoint (BasicSR .pth with params/params_ema, a plain state dict, or "
        ".safetensors; pickles are loaded with weights_only=True) and write our .safetensors with the config inside. "
        "The architecture is read from the weights (see `swintormer inspect`); --model or --arch/--config name it "
        "instead, and the file must agree (the window size, which no weight records, can only be given this way).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="UPSTREAM", help="upstream checkpoint file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="NAME", help="registered variant whose architecture the checkpoint has")
    src.add_argument("--arch", choices=("swintormer", "restormer"), help="upstream architecture (with --config)")
    p.add_argument("--config", metavar="JSON", help="upstream constructor kwargs as JSON text or a .json file (with --arch)")
    p.add_argument("--param-key", default="auto", help="entry to read: params_ema, params, ... (default: auto)")
    p.set_defaults(func=run)


def _config_arg(text: str | None) -> dict:
    from swintormer.errors import SwintormerError

    if not text:
        return {}
    try:
        source = Path(text).read_text() if text.endswith(".json") else text
        data = json.loads(source)
    except (OSError, json.JSONDecodeError) as exc:
        raise SwintormerError(f"--config is neither valid JSON nor a readable .json file ({exc})") from None
    if not isinstance(data, dict):
        raise SwintormerError("--config must be a JSON object of constructor keyword arguments")
    return data


def run(args: argparse.Namespace) -> int:
    from swintormer.checkpoint import is_our_format, save_checkpoint
    from swintormer.errors import SwintormerError
    from swintormer.model import DeblurModel
    from swintormer.models.config import RestorerConfig

    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise SwintormerError(f"output must end in .safetensors, got {out}")
    if args.config and not args.arch:
        raise SwintormerError("--config goes with --arch; a --model already fixes the config")
    if is_our_format(Path(args.checkpoint)):
        raise SwintormerError(f"{args.checkpoint} is already a Swintormer-RT checkpoint; every command reads it as it is")
    expect = RestorerConfig.from_upstream(args.arch, _config_arg(args.config)) if args.arch else args.model
    model = DeblurModel.load(args.checkpoint, expect=expect, param_key=args.param_key)
    meta = {**model.metadata(), "source": Path(args.checkpoint).name}
    save_checkpoint(out, model.components(), meta)
    params = sum(p.numel() for p in model.restorer.parameters())
    log.info("wrote %s (%s, %s parameters)", out, model.label, f"{params:,}")
    return 0
