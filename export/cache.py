"""The artifact cache: exported graphs and engines, keyed by everything that produced them.

A key hashes the component's weights (its state dict, so an unrelated component's change does
not invalidate it), the export spec, the precision, the source of the code that shapes a graph
(the networks, their layers and the exporter: an upgrade that changes a graph re-exports it by
itself) and the library versions; engines add TensorRT's version and the GPU's compute capability. The root is
``$SWINTORMER_CACHE`` or ``~/.cache/swintormer-rt``.

Processes share the cache: :func:`artifact_lock` lets one process make an artifact while the
others wait for it (``xargs -P 4 swintormer deblur ...`` on a fresh machine exports once, not
four times into the same temporary file).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

__all__ = ["EXPORTER_VERSION", "artifact_key", "artifact_lock", "cache_root", "module_digest"]

log = logging.getLogger(__name__)

#: Bump when a change to the export code changes the graphs it writes (the source digest below
#: catches edits of the files it reads; this covers anything else).
EXPORTER_VERSION = "1"

#: The sources a graph depends on: packages (every module in them) and modules of this package.
GRAPH_PACKAGES = ("swintormer.layers", "swintormer.models", "swintormer.diffusion")
GRAPH_MODULES = ("onnx_export.py", "specs.py", "quantize.py")


@functools.lru_cache(maxsize=1)
def graph_code_digest() -> str:
    """sha256 of the source files that shape an exported graph (found where they are installed)."""
    import importlib.util

    files = [Path(__file__).with_name(name) for name in GRAPH_MODULES]
    for package in GRAPH_PACKAGES:
        for folder in importlib.util.find_spec(package).submodule_search_locations:
            files += sorted(Path(folder).glob("*.py"))
    h = hashlib.sha256()
    for path in files:
        h.update(f"{path.parent.name}/{path.name}".encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def cache_root() -> Path:
    return Path(os.environ.get("SWINTORMER_CACHE", Path.home() / ".cache" / "swintormer-rt"))


def module_digest(module: nn.Module) -> str:
    """sha256 of a module's config and state dict (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256(repr(getattr(module, "config", "")).encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def artifact_key(*parts: str) -> str:
    """A short stable key from the given parts (16 hex digits)."""
    import onnx

    h = hashlib.sha256("|".join((EXPORTER_VERSION, graph_code_digest(), torch.__version__, onnx.__version__, *parts)).encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def artifact_lock(path: Path) -> Iterator[None]:
    """Held while this process makes ``path``; another process making it waits here (an advisory
    ``flock`` on ``path.lock``, released by the kernel if the holder dies). Check again whether
    ``path`` exists once inside: the process that held it may have made it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no locking
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("  waiting for another process making %s", path.name)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
