"""``swintormer convert``: upstream checkpoint -> our .safetensors (weights + config)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

EPILOG = """examples:
  swintormer convert net_g_latest.pth --model swintormer-dpdd -o swintormer-dpdd.safetensors
  swintormer convert single_image_defocus_deblurring.pth --model restormer-defocus-single -o restormer.safetensors
  swintormer convert custom.pth --arch swintormer --config '{"dim": 32, "inp_channels": 3}' -o custom.safetensors
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert an upstream Swintormer/Restormer checkpoint to our format",
        description="Read an upstream checkpoint (BasicSR .pth with params/params_ema, a plain state dict, or "
        ".safetensors; pickles are loaded with weights_only=True) and write our .safetensors with the config inside.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="UPSTREAM", help="upstream checkpoint file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors")
    src = p.add_mutually_exclusive_group(required=True)
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
    from swintormer.checkpoint import load_state_dict_into, load_upstream, read_state_dict, save_checkpoint
    from swintormer.errors import SwintormerError
    from swintormer.registry import build_model

    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise SwintormerError(f"output must end in .safetensors, got {out}")
    if args.model:
        if args.config:
            raise SwintormerError("--config goes with --arch; a --model already fixes the config")
        model = load_state_dict_into(build_model(args.model), read_state_dict(args.checkpoint, args.param_key), args.checkpoint)
    else:
        model = load_upstream(args.checkpoint, args.arch, _config_arg(args.config), args.param_key)
    meta = {"model": args.model or "", "source": Path(args.checkpoint).name}
    save_checkpoint(out, {"restorer": model}, meta)
    params = sum(p.numel() for p in model.parameters())
    log.info("wrote %s (%s, %s parameters)", out, args.model or model.config.arch, f"{params:,}")
    return 0
