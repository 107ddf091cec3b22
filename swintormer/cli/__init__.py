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

_COMMANDS = ("demo", "deblur", "export", "serve", "health", "client", "eval", "train", "synth", "profile", "inspect", "convert", "models")


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


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``swintormer`` parser; ``only`` registers just that sub-command (its module alone is imported)."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="swintormer",
        description="Swintormer-RT: defocus deblurring with Swintormer/Restormer, exported to ONNX/TensorRT "
        "and served by Triton. Start with `swintormer demo`.",
    )
    _add_verbosity(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS if only is None else (only,):
        importlib.import_module(f"swintormer.cli.{name}").register(subparsers)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The sub-command ``argv`` names (after the global flags), if it is one of ours."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
    return None


def _standalone_export(prog: str) -> argparse.ArgumentParser:
    """``swintormer export`` as its own command (``python export/build_engines.py``)."""
    from swintormer.cli import export

    parser = argparse.ArgumentParser(prog=prog, description=export.__doc__.split("\n\n")[1].replace("\n", " "),
                                     epilog=export.EPILOG.format(prog=prog), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_verbosity(parser)
    export.add_arguments(parser)
    parser.set_defaults(func=export.run)
    return parser


def _idle_threads_sleep() -> None:
    """Compute threads that sleep when idle (``OMP_WAIT_POLICY=PASSIVE`` unless the user set it).

    OpenMP's default lets idle threads spin; with other work on the machine that made inference
    2-4x slower (640x427: 5.0-6.2 s against 1.3-1.4 s; 12 MP: 152 s against 59 s). Set before torch
    is imported (libgomp reads it once); ONNX Runtime's sessions follow the same setting
    (:class:`swintormer.backends.onnxruntime.OrtSession`), and server processes inherit it.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the command line on ``argv``; ``prog`` names a script that stands for ``swintormer export``."""
    _idle_threads_sleep()
    if prog is not None:
        parser = _standalone_export(prog)
        argv = list(argv or [])[1:] if argv and argv[0] == "export" else argv
    else:
        parser = build_parser(_command_in(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    _setup_logging(-1 if args.quiet else args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_guarded(args.func, args)


def run_guarded(func, args: argparse.Namespace) -> int:
    """Run a command: a :class:`SwintormerError` is one ``error:`` line and its exit status (2 for a
    usage or input error, 1 for a server that fails), never a traceback."""
    try:
        return int(func(args) or 0)
    except SwintormerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `swintormer profile ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
