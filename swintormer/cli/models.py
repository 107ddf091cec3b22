"""``swintormer models``: the registered variants."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the registered model variants", description="List the registered model variants.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swintormer.registry import list_models

    variants = list_models()
    width = max(map(len, variants))
    for name, desc in variants.items():
        print(f"{name:<{width}}  {desc}")
    return 0
