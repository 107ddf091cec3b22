"""``swintormer inspect``: what a checkpoint holds, worked out from the file alone."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

EPILOG = """examples:
  swintormer inspect net_g_latest.pth                 # an upstream BasicSR file: family and config detected
  swintormer inspect runs/tiny/model.safetensors --json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inspect", help="show what a checkpoint holds (family, config, parameters, matching variant)",
        description="Read a checkpoint (ours, a BasicSR .pth with params/params_ema, or a plain state dict) and "
        "print the model it holds: the architecture family and its whole config (read from the weights for "
        "upstream files), the parameter count, and the registered variant it equals, if any.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file")
    p.add_argument("--param-key", default="auto", help="entry of an upstream file to read: params_ema, params, ... (default: auto)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def describe(path: Path, param_key: str = "auto") -> dict:
    """The facts ``inspect`` prints, as a dict."""
    from swintormer.checkpoint import is_our_format, load_checkpoint, read_state_dict
    from swintormer.model import DeblurModel, matching_variant
    from swintormer.models.detect import detect_restorer

    if is_our_format(path):
        ckpt = load_checkpoint(path)
        model = DeblurModel.from_components(ckpt.components, ckpt.metadata, str(path))
        config, notes, fmt = model.restorer.config, [], "Swintormer-RT .safetensors (config inside)"
        components = {k: sum(p.numel() for p in m.parameters()) for k, m in ckpt.components.items()}
        extra = {k: v for k, v in ckpt.metadata.items() if k in ("model", "stage", "source")}
    else:
        state = read_state_dict(path, param_key)
        detection = detect_restorer(state)
        config, notes = detection.config, list(detection.notes)
        fmt = "upstream state dict (architecture read from the weights)"
        model = DeblurModel.load(path, param_key=param_key)
        components = {"restorer": sum(p.numel() for p in model.restorer.parameters())}
        extra = {}
    return {
        "file": str(path), "format": fmt, "family": config.arch, "config": dataclasses.asdict(config),
        "parameters": components, "variant": matching_variant(config) or None, "notes": notes, **extra,
    }


def run(args: argparse.Namespace) -> int:
    from swintormer.errors import SwintormerError

    path = Path(args.checkpoint)
    if not path.is_file():
        raise SwintormerError(f"checkpoint not found: {path}")
    info = describe(path, args.param_key)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"file        {info['file']}")
    print(f"format      {info['format']}")
    print(f"family      {info['family']}")
    print(f"variant     {info['variant'] or 'none registered (build it from the config below)'}")
    for name, count in info["parameters"].items():
        print(f"parameters  {name}: {count:,}")
    print("config")
    for key, value in info["config"].items():
        print(f"  {key:<22}{value}")
    for note in info["notes"]:
        print(f"note        {note}")
    return 0
