#!/usr/bin/env python3
"""Build everything a deployment needs from one checkpoint: ``swintormer export`` as a script.

    python export/build_engines.py                      # the bundled default model, CPU flavour
    python export/build_engines.py --checkpoint my.safetensors --precision fp16 --flavour gpu

``python export/build_engines.py --help`` lists every option; the work is
:func:`swintormer.export.deploy.build_deployment`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script, this folder is sys.path[0]; its module names (build, cache, specs, ...) must not
# shadow third-party modules, and the package is imported as swintormer.export instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)


def main(argv: list[str] | None = None) -> int:
    from swintormer.cli import main as cli_main

    return cli_main(["export", *(sys.argv[1:] if argv is None else argv)], prog="python export/build_engines.py")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
