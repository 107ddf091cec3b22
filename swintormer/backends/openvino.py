"""OpenVINO backend: the exported ONNX graphs read by OpenVINO's own ONNX frontend, on the CPU.

``fp32`` runs the fp32 graph at fp32 (``INFERENCE_PRECISION_HINT=f32``: OpenVINO would otherwise
pick bf16 by itself on CPUs that have it); ``bf16`` runs the same fp32 graph with bf16 inference
precision, which OpenVINO applies to convolutions and matmuls on CPUs with bf16 units
(AVX512-BF16, AMX) and keeps norms, softmax and reductions in fp32. A CPU without bf16 units is
refused rather than emulated (slower than fp32). Our int8 QDQ graphs are not offered here:
OpenVINO ran them 1.3x faster than its fp32 but at 30-32 dB against fp32 torch (ONNX Runtime runs
the same graphs at 45+ dB), below any bar we set.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from swintormer.backends import BackendRequest
from swintormer.backends.compose import graph_tile_fn, numpy_feed
from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.tiling import TileFn

__all__ = ["OvSession", "bf16_units", "check_precision", "tile_fn"]

log = logging.getLogger(__name__)

#: run precision -> OpenVINO's INFERENCE_PRECISION_HINT
HINTS = {"fp32": "f32", "bf16": "bf16"}
#: /proc/cpuinfo flags of CPUs that compute bf16 natively (x86 AVX512-BF16 / AMX, Arm BF16)
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
#: most parallel streams a session runs (each a compiled model on its share of the threads)
MAX_STREAMS = 8


def _ov():
    try:
        import openvino
    except ImportError:
        raise SwintormerError("OpenVINO is not installed: pip install 'swintormer[openvino]' (or pip install openvino)") from None
    return openvino


@functools.lru_cache(maxsize=1)
def _core():
    return _ov().Core()


def bf16_units(cpuinfo: str | None = None) -> str | None:
    """The CPU feature that gives this machine bf16 arithmetic (``avx512_bf16``, ...), or None.

    ``cpuinfo``: the text of ``/proc/cpuinfo`` (read when None; None off Linux).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = set()
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("flags", "features")):
            flags.update(line.split(":", 1)[-1].split())
    return next((f for f in BF16_FLAGS if f in flags), None)


def check_precision(precision: str) -> None:
    """Refuse a precision OpenVINO cannot run well here, saying what to use instead."""
    if precision not in HINTS:
        raise SwintormerError(f"the openvino backend runs {', '.join(HINTS)}, not {precision}")
    if precision == "bf16":
        unit = bf16_units()
        caps = _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if unit is None or "BF16" not in caps:
            raise SwintormerError(
                f"--precision bf16 needs a CPU with bf16 units (AVX512-BF16 or AMX on x86, BF16 on Arm); this "
                f"{platform.processor() or platform.machine()} has none, and emulated bf16 is slower than fp32: use "
                f"--precision fp32 (or --backend onnxruntime --precision int8)")


class OvSession:
    """One ONNX graph compiled by OpenVINO for the CPU: ``session(**inputs) -> first output``.

    Run as streams: one compiled model per core (up to :data:`MAX_STREAMS`), each on one thread,
    and a batch of tiles cut into one part per stream, run at once. On the default model (dim 16)
    that is about twice as fast per tile as one model over all cores (2-core EPYC, bf16: 31 against
    68 ms), whose threads mostly wait for each other. Separate compiled models rather than
    OpenVINO's own streams of one: with those, a few benchmark runs returned fp32 outputs at
    63-90 dB instead of 104-154 dB against torch, which we could not reproduce in isolation.
    ``threads``: threads over all streams (0: one per core); with a known ``batch`` smaller than
    the cores, ``batch`` streams share them (a batch of 1: one model on every thread).

    ``batch``: the largest batch a call carries (0: unknown). Given, and every other axis of the
    graph fixed, each stream is compiled for a static part of ``ceil(batch / streams)`` items:
    OpenVINO then plans its kernels once, at load, instead of on a call's first shape (2-core
    Xeon, bf16, 8 tiles a call: 23 against 29 ms a tile, first call 0.21 against 0.35-0.71 s).
    A shorter part is padded with zeros (its outputs dropped); a longer call runs in rounds.
    ``profile``: OpenVINO records every node's kernel time (``PERF_COUNT``), read by
    :func:`swintormer.backends.op_profile.profile_graph`.
    """

    def __init__(self, path: str | Path, precision: str = "fp32", threads: int = 0, batch: int = 0,
                 profile: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise SwintormerError(f"ONNX file not found: {path}")
        check_precision(precision)
        total = threads or os.cpu_count() or 1
        streams = max(1, min(total, MAX_STREAMS))
        if batch > 0:  # no more streams than a call has items: a batch of 1 gets every thread
            streams = min(streams, batch)
        config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": max(1, total // streams), "ENABLE_CPU_PINNING": False}
        if profile:  # per-node kernel times of each request's last run (swintormer.backends.op_profile)
            config["PERF_COUNT"] = True
        core = _core()
        try:
            model = core.read_model(str(path))
            self.part = self._make_static(model, -(-batch // streams)) if batch > 0 else 0
            # one compiled model per stream (not one model's streams): no state shared between them
            self.compiled = [core.compile_model(model, "CPU", config) for _ in range(streams)]
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise SwintormerError(f"OpenVINO cannot compile {path}: {exc}") from None
        self.requests = [c.create_infer_request() for c in self.compiled]
        self.used = 0  # requests the last round ran on (the ones whose profiling info is the last call's)
        self.path, self.precision = path, precision
        self.input_names = [i.get_any_name() for i in self.compiled[0].inputs]
        self.shapes = {i.get_any_name(): tuple(i.get_partial_shape().to_shape()) for i in self.compiled[0].inputs} if self.part else {}

    @staticmethod
    def _make_static(model, part: int) -> int:
        """Reshape ``model`` so every input's batch axis is ``part``; 0 (left dynamic) when another axis is dynamic."""
        shapes = {}
        for i in model.inputs:
            dims = list(i.get_partial_shape())
            if any(d.is_dynamic for d in dims[1:]):
                return 0
            shapes[i.get_any_name()] = [part] + [d.get_length() for d in dims[1:]]
        model.reshape(shapes)
        return part

    def __call__(self, **inputs: np.ndarray | torch.Tensor) -> np.ndarray:
        feed = numpy_feed(inputs, self.input_names, self.path.name)
        batch = next(iter(feed.values())).shape[0]
        if not self.part:
            bounds = np.linspace(0, batch, min(batch, len(self.requests)) + 1).astype(int)
            return np.concatenate(self._run([{k: v[lo:hi] for k, v in feed.items()} for lo, hi in zip(bounds, bounds[1:])]))
        for name, v in feed.items():
            if v.shape[1:] != self.shapes[name][1:]:
                raise SwintormerError(f"{self.path.name}: input {name} of shape {list(v.shape)}; this session runs "
                                      f"[n, {', '.join(map(str, self.shapes[name][1:]))}]")
        parts = []
        for lo in range(0, batch, self.part):
            part = {k: v[lo : lo + self.part] for k, v in feed.items()}
            n = next(iter(part.values())).shape[0]
            if n < self.part:  # the last part: zeros up to the compiled shape
                part = {k: np.concatenate([v, np.zeros((self.part - n, *v.shape[1:]), v.dtype)]) for k, v in part.items()}
            parts.append((part, n))
        results = []
        for i in range(0, len(parts), len(self.requests)):  # one round: a part per stream
            group = parts[i : i + len(self.requests)]
            # copies: the next round reuses the requests' buffers
            results += [r[:n].copy() for r, (_, n) in zip(self._run([p for p, _ in group]), group)]
        return np.concatenate(results)

    def _run(self, parts: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """Each part on its own request at once; the outputs, views of the requests' own buffers."""
        self.used = min(len(parts), len(self.requests))
        for request, part in zip(self.requests, parts):
            request.start_async(part)
        for request, _ in zip(self.requests, parts):
            request.wait()
        return [request.get_output_tensor(0).data for request, _ in zip(self.requests, parts)]


def tile_fn(model: DeblurModel, request: BackendRequest, graphs: Mapping[str, Path] | None) -> TileFn:
    """The backend's factory: ``graphs`` are the model's exported ONNX files by component."""
    if not graphs:
        raise SwintormerError("the openvino backend needs the exported graphs (swintormer.inference.tile_function builds them)")
    sessions = {}
    for name, path in graphs.items():
        session = OvSession(path, request.precision, request.threads, request.batch)
        sessions[name] = lambda _s=session, **feed: torch.from_numpy(_s(**feed))
    return graph_tile_fn(sessions, request.settings or model.prior, model.scheduler)
