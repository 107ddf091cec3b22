"""``swintormer models``: the registered variants."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list the registered model variants",
        description="List the registered model variants and which ones ship with weights.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.model import BUNDLED, DEFAULT_CHECKPOINT
    from swintormer.registry import list_models

    variants = list_models()
    width = max(map(len, variants))
    for name, desc in variants.items():
        mark = "*" if BUNDLED.get(name) == DEFAULT_CHECKPOINT else "+" if name in BUNDLED else " "
        print(f"{mark} {name:<{width}}  {desc}")
    print("\n* the default (bundled weights)   + bundled weights (use --model NAME)   others: bring --checkpoint")
    return 0
