"""Where benchmark numbers go, with how they were made.

A run writes ``<run folder>/<device>.json`` (default ``runs/bench/<date>-<time>/``, ignored by
git) and a report of it beside it, so ``pytest benchmarks/`` never dirties a checkout. Only with
``--record`` are the run's sections merged into the committed ``benchmarks/results/<device>.json``
and ``BENCHMARKS.md`` regenerated from those.

Every section a benchmark writes records the device, library versions, the command and the git
revision, so a number in ``BENCHMARKS.md`` can always be traced to the run that produced it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[1]

#: This session's run folder and whether it publishes into RESULTS (set by :func:`configure`).
_RUN: dict = {"dir": None, "record": False}


def configure(run_dir: Path | None = None, record: bool = False) -> Path:
    """Pick this session's run folder (default ``runs/bench/<date>-<time>``); returns it."""
    _RUN["dir"] = Path(run_dir) if run_dir else ROOT / "runs" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    _RUN["record"] = record
    return _RUN["dir"]


def run_dir() -> Path:
    if _RUN["dir"] is None:
        configure()
    return _RUN["dir"]


def recording() -> bool:
    """Whether this run updates the committed results (``--record``)."""
    return bool(_RUN["record"])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name() -> str:
    """``cuda-<gpu>`` or ``cpu-<cores>c-<model>``, filesystem-safe."""
    import torch

    if torch.cuda.is_available():
        raw = f"cuda-{torch.cuda.get_device_name(0)}"
    else:
        raw = f"cpu-{os.cpu_count()}c-{cpu_name()}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-").lower()[:80]


def results_file(out: Path | None, device: str, kind: str) -> Path:
    """Where a GPU script writes its JSON: ``out`` if it is a file path, else
    ``<out or benchmarks/results>/<device, lower-case, dashes>-<kind>.json``; its folder created."""
    out = out or RESULTS
    if out.is_dir():
        out = out / f"{re.sub(r'[^a-z0-9]+', '-', device.lower()).strip('-')}-{kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS.parent, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=RESULTS.parent, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if rev.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    import numpy
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    for name in ("onnx", "onnxruntime", "tritonclient", "triton", "tensorrt"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # not installed, or a namespace package without a version
            continue
    return out


def _program() -> str:
    """``pytest`` for ``python -m pytest`` (whose argv[0] is ``pytest/__main__.py``), else the script's name."""
    prog = Path(sys.argv[0])
    return prog.parent.name if prog.name == "__main__.py" else prog.name


def environment() -> dict:
    import torch

    return {
        "device": device_name(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": versions(),
        "git_revision": git_revision(),
        "command": shlex.join([_program(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def results_path(device: str | None = None) -> Path:
    """This run's results file for ``device`` (default: this machine)."""
    return run_dir() / f"{device or device_name()}.json"


def committed_path(device: str | None = None) -> Path:
    return RESULTS / f"{device or device_name()}.json"


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def previous(section: str) -> dict:
    """The data of ``section`` so far: this run's, else (with ``--record``) the committed one.

    For benchmarks that add to a section piece by piece (one variant per test); the environment
    and quick flag are dropped, :func:`record` writes fresh ones.
    """
    doc = _read(results_path())
    if section not in doc and recording():
        doc = _read(committed_path())
    data = dict(doc.get(section, {}))
    data.pop("environment", None)
    data.pop("quick", None)
    return data


def record(section: str, data: dict, quick: bool) -> Path:
    """Write ``{section: data}`` (with the environment) into this run's results file."""
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = _read(path)
    doc[section] = {"environment": environment(), "quick": quick, **data}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def publish() -> list[Path]:
    """Merge every results file of this run into ``benchmarks/results/`` (section by section)."""
    written = []
    for path in sorted(run_dir().glob("*.json")):
        target = RESULTS / path.name
        run = _read(path)
        RESULTS.mkdir(parents=True, exist_ok=True)
        if "results" in run and "peaks" in run:  # a kernel benchmark file: whole, not by section
            target.write_text(json.dumps(run, indent=1) + "\n")
        else:
            target.write_text(json.dumps({**_read(target), **run}, indent=2, sort_keys=True) + "\n")
        written.append(target)
    return written
