"""Where benchmark numbers go: ``benchmarks/results/<device>.json``, with how they were made.

Every section a benchmark writes records the device, library versions, the command and the git
revision, so a number in ``BENCHMARKS.md`` can always be traced to the run that produced it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def results_path(device: str | None = None) -> Path:
    return RESULTS / f"{device or device_name()}.json"


def record(section: str, data: dict, quick: bool) -> Path:
    """Merge ``{section: data}`` (with the environment) into this device's results file."""
    path = results_path()
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc[section] = {"environment": environment(), "quick": quick, **data}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path
