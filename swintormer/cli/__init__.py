"""``swintormer`` command line: one sub-command per module, errors as one line.

Every sub-command module exposes ``register(subparsers)`` which adds its parser and sets
``func``; a :class:`~swintormer.errors.SwintormerError` becomes ``error: <message>`` on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from swintormer.errors import SwintormerError

__all__ = ["main", "run_guarded"]

_COMMANDS = ("demo", "deblur", "serve", "client", "eval", "train", "synth", "profile", "convert", "models")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
        return msg if record.levelno == logging.INFO else f"{record.levelname.lower()}: {msg}"


def _setup_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="swintormer",
        description="Swintormer-RT: defocus deblurring with Swintormer/Restormer, exported to ONNX/TensorRT "
        "and served by Triton. Start with `swintormer demo`.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"swintormer.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(-1 if args.quiet else args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_guarded(args.func, args)


def run_guarded(func, args: argparse.Namespace) -> int:
    """Run a command: a :class:`SwintormerError` is one ``error:`` line and status 2, never a traceback."""
    try:
        return int(func(args) or 0)
    except SwintormerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `swintormer profile ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
