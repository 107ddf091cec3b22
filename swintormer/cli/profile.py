"""``swintormer profile``: parameters and MACs of a variant, under both counting conventions."""

from __future__ import annotations

import argparse
import json

CONVENTIONS = {
    "thop_macs": "conv + linear + nn.LayerNorm (4 per element), as thop.profile counts; attention matmuls not counted",
    "fvcore_macs": "conv + linear + attention matmuls + nn.LayerNorm (5 per element), as fvcore counts",
    "conv_linear_macs": "conv + linear layers only",
    "attention_matmul_macs": "the attention maps' matmuls (q@k^T and attn@v) only",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "profile",
        help="count parameters and MACs of a model variant",
        description="Count parameters and multiply-accumulates (MACs) for one input tile, "
        "under the thop and fvcore conventions (papers mix the two).",
    )
    p.add_argument("--model", required=True, metavar="NAME", help="registered variant (see `swintormer models`)")
    p.add_argument("--size", type=int, default=256, help="square input size in pixels (default 256)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.errors import SwintormerError
    from swintormer.profiling import count_cost
    from swintormer.registry import build_model

    if args.size < 8 or args.batch < 1:
        raise SwintormerError("--size must be >= 8 and --batch >= 1")
    model = build_model(args.model)
    shape = (args.batch, model.config.in_channels, args.size, args.size)
    report = count_cost(model, shape).as_dict()
    report = {"model": args.model, **report, "conventions": CONVENTIONS}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.model} at input {shape}")
    print(f"  parameters            {report['params']:>16,}")
    for key in CONVENTIONS:
        print(f"  {key:<22}{report[key] / 1e9:>12.3f} G   {CONVENTIONS[key]}")
    return 0
