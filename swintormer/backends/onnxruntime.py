"""ONNX Runtime backend: the exported graphs behind the same tile function as PyTorch.

CPU here; CUDA or TensorRT execution providers are used when the installed onnxruntime has them
(``onnxruntime-gpu``) and the caller asks for them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from swintormer.backends import PROVIDERS, BackendRequest
from swintormer.backends.compose import graph_tile_fn, numpy_feed
from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.tiling import TileFn

__all__ = ["OrtSession", "available_providers", "ort_tile_fn", "tile_fn"]

log = logging.getLogger(__name__)


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise SwintormerError("ONNX Runtime is not installed: pip install 'swintormer[export]'") from None
    return onnxruntime


def available_providers() -> list[str]:
    return list(_ort().get_available_providers())


#: Tiles per run on the CPU provider: a run's activations grow with its batch (about 60 MB a
#: 256x256 tile for the default model: 477 MB at 8, 112 MB at 2) and its time per tile does not
#: fall past 2 (2-core Xeon, interleaved: 67.8 / 65.0 / 69.3 / 73.2 ms a tile at 1 / 2 / 4 / 8).
CPU_RUN_BATCH = 2


class OrtSession:
    """One ONNX graph: ``session(**inputs) -> first output`` with NumPy or torch tensors.

    Every input is batch-first (export/specs.py). On the CPU provider a call of more than
    ``run_batch`` items runs as consecutive runs of ``run_batch`` (default CPU_RUN_BATCH; 0: one
    run), so the caller's batch sets the contract and not the activation memory. ``profile_dir``:
    record ONNX Runtime's profile of every run there (read by
    :func:`swintormer.backends.op_profile.profile_graph`).
    """

    def __init__(self, path: str | Path, providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0,
                 run_batch: int | None = None, profile_dir: Path | None = None) -> None:
        ort = _ort()
        path = Path(path)
        if not path.is_file():
            raise SwintormerError(f"ONNX file not found: {path}")
        missing = [p for p in providers if p not in ort.get_available_providers()]
        if missing:
            raise SwintormerError(f"ONNX Runtime here lacks {missing}; available: {ort.get_available_providers()}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # No memory pattern: it plans one block per input shape and keeps them all (the default
        # model's session peaked at 1063 MB with it, 591 MB without, three batches of tiles; no
        # slower here), which left the ONNX Runtime process at 3x torch's peak.
        options.enable_mem_pattern = False
        if threads:
            options.intra_op_num_threads = threads
        if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":  # the command line's default: no spinning
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if profile_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(profile_dir) / path.stem)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise SwintormerError(f"ONNX Runtime cannot load {path}: {exc}") from None
        self.path = path
        self.input_names = [i.name for i in self.session.get_inputs()]
        on_cpu = list(providers)[:1] == ["CPUExecutionProvider"]
        self.run_batch = (CPU_RUN_BATCH if on_cpu else 0) if run_batch is None else run_batch

    def __call__(self, **inputs: np.ndarray | torch.Tensor) -> np.ndarray:
        feed = numpy_feed(inputs, self.input_names, self.path.name)
        n = min((len(v) for v in feed.values() if v.ndim), default=0)
        step = self.run_batch
        if not step or n <= step:
            return self.session.run(None, feed)[0]
        parts = [self.session.run(None, {k: v[i : i + step] for k, v in feed.items()})[0] for i in range(0, n, step)]
        return np.concatenate(parts)


def ort_tile_fn(paths: Mapping[str, Path], settings, scheduler, providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0) -> TileFn:
    """A tile function over ONNX graphs ``{"restorer": ..., ["encoder": ..., "denoiser": ...]}``.

    ``settings``/``scheduler``: the prior's :class:`PriorSettings` and :class:`SchedulerConfig`
    (unused without encoder/denoiser graphs).
    """
    sessions = {}
    for name, path in paths.items():
        session = OrtSession(path, providers, threads)
        sessions[name] = lambda _s=session, **feed: torch.from_numpy(_s(**feed))
    return graph_tile_fn(sessions, settings, scheduler)


def tile_fn(model: DeblurModel, request: BackendRequest, graphs: Mapping[str, Path] | None) -> TileFn:
    """The backend's factory: ``graphs`` are the model's exported ONNX files by component."""
    if not graphs:
        raise SwintormerError("the onnxruntime backend needs the exported graphs (swintormer.inference.tile_function builds them)")
    providers = [PROVIDERS[request.provider]] + (["CPUExecutionProvider"] if request.provider != "cpu" else [])
    return ort_tile_fn(graphs, request.settings or model.prior, model.scheduler, providers, request.threads)
