"""``swintormer profile``: parameters and MACs of a variant, under both counting conventions."""

from __future__ import annotations

import argparse
import json

CONVENTIONS = {
    "thop_macs": "conv + linear + LayerNorm/GroupNorm (4 per element), as thop.profile counts; attention matmuls not counted",
    "fvcore_macs": "conv + linear + attention matmuls + LayerNorm/GroupNorm (5 per element), as fvcore counts",
    "conv_linear_macs": "conv + linear layers only",
    "attention_matmul_macs": "the attention maps' matmuls (q@k^T and attn@v) only",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "profile",
        help="count parameters and MACs of a model variant",
        description="Count parameters and multiply-accumulates (MACs) for one input tile, "
        "under the thop and fvcore conventions (papers mix the two). Prior models also report their "
        "encoder and one denoiser step (multiply by --prior-steps for the sampling cost).",
    )
    p.add_argument("--model", required=True, metavar="NAME", help="registered variant (see `swintormer models`)")
    p.add_argument("--size", type=int, default=256, help="square image tile size in pixels (default 256); the denoiser runs at size/4")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.errors import SwintormerError
    from swintormer.profiling import profile_variant

    if args.size < 32 or args.size % 32 or args.batch < 1:
        raise SwintormerError("--size must be a positive multiple of 32 and --batch >= 1")
    reports = profile_variant(args.model, args.size, args.batch)
    main = reports.pop("model")
    result = {"model": args.model, **main.as_dict(), "conventions": CONVENTIONS}
    if reports:
        result["components"] = {role: r.as_dict() for role, r in reports.items()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for role, report in {args.model: main, **reports}.items():
        print(f"{role} at input {report.input_shape}")
        print(f"  parameters            {report.params:>16,}")
        d = report.as_dict()
        for key in CONVENTIONS:
            print(f"  {key:<22}{d[key] / 1e9:>12.3f} G   {CONVENTIONS[key]}")
    return 0
