"""Where an exported graph spends its time: the runtime's own profiler, summed by op type and node.

- ONNX Runtime records every kernel it runs (``SessionOptions.enable_profiling``); the graph runs
  through :class:`~swintormer.backends.onnxruntime.OrtSession`, the session deblurring uses (same
  threads, spinning and CPU run batch), and only the kernels of the timed calls are kept.
- OpenVINO reports each node of a request's last run (``PERF_COUNT``) with the kernel it picked
  (``exec_type``: ``brgconv_avx512_1x1_bf16``, ``jit_avx512_f32``, ...), which shows the precision
  each op really ran in; the graph runs through
  :class:`~swintormer.backends.openvino.OvSession`, whose parallel streams each take a part of
  the batch, so its times are summed over the streams.

Convolutions and matmuls (:data:`COMPUTE_OPS`) are what reduced precision speeds up; their share
of the time bounds what int8 or bf16 arithmetic can gain at best (:meth:`OpProfile.ceiling`).
Shared by ``swintormer profile --runtime ...`` and the benchmarks. Both profilers add time to
every kernel, more to a graph of many small ones (ONNX Runtime, an int8 QDQ graph: up to half as
much again as its unprofiled run, 2-core EPYC): read the shares, and time graphs unprofiled.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from swintormer.errors import SwintormerError

__all__ = ["COMPUTE_OPS", "RUNTIMES", "OpProfile", "OpTime", "profile_graph", "summarise", "tally"]

RUNTIMES = ("onnxruntime", "openvino")
#: op types that do a convolution's or a matmul's arithmetic (ONNX Runtime's fp32, fused and
#: quantized kernels; OpenVINO's node types)
COMPUTE_OPS = ("Conv", "FusedConv", "NhwcFusedConv", "ConvInteger", "QLinearConv", "ConvTranspose", "MatMul",
               "FusedMatMul", "Gemm", "FusedGemm", "MatMulInteger", "MatMulIntegerToFloat", "QLinearMatMul",
               "DynamicQuantizeMatMul", "Convolution", "GroupConvolution", "Deconvolution", "FullyConnected")


@dataclass(frozen=True)
class OpTime:
    """One op type or node: milliseconds of kernel time per call, kernels per call, share of the
    total, and the kernel that ran it (OpenVINO; for an op type, the one that took most time)."""

    name: str
    op_type: str
    ms: float
    kernels: float
    share: float
    exec_type: str = ""


@dataclass(frozen=True)
class OpProfile:
    """Kernel time of one graph per call of ``batch`` items: the mean of ``calls`` timed calls,
    summed over the ``streams`` that ran parts of a call at once."""

    graph: str
    runtime: str
    batch: int
    calls: int
    streams: int
    total_ms: float
    by_type: tuple[OpTime, ...]
    by_node: tuple[OpTime, ...]

    def share_of(self, op_types: Iterable[str] = COMPUTE_OPS) -> float:
        """Fraction of the kernel time spent in ``op_types``."""
        wanted = set(op_types)
        return sum(t.share for t in self.by_type if t.name in wanted)

    def ceiling(self, op_types: Iterable[str] = COMPUTE_OPS) -> float:
        """The speed-up if ``op_types`` took no time at all (Amdahl): ``1 / (1 - share)``."""
        rest = 1.0 - self.share_of(op_types)
        return float("inf") if rest <= 0 else 1.0 / rest

    def as_dict(self, top: int = 15) -> dict:
        return {"graph": self.graph, "runtime": self.runtime, "batch": self.batch, "calls": self.calls,
                "streams": self.streams, "total_ms": self.total_ms, "compute_share": self.share_of(),
                "compute_ceiling": self.ceiling(), "by_type": [asdict(t) for t in self.by_type],
                "slowest_nodes": [asdict(t) for t in self.by_node[:top]]}


def tally(kernels: Iterable[tuple[str, str, str, float]], calls: int, graph: str = "", runtime: str = "",
          batch: int = 0, streams: int = 1) -> OpProfile:
    """An :class:`OpProfile` from ``(node, op type, kernel, microseconds)`` rows gathered over ``calls`` calls."""
    per_type: dict[str, list] = defaultdict(lambda: [0.0, 0, Counter()])
    per_node: dict[str, list] = {}
    for node, op, kind, us in kernels:
        row = per_type[op]
        row[0] += us
        row[1] += 1
        row[2][kind] += us
        entry = per_node.setdefault(node, [op, 0.0, 0, kind])
        entry[1] += us
        entry[2] += 1
    total = sum(v[0] for v in per_type.values())
    if total <= 0:
        raise SwintormerError(f"the profile of {graph or 'the graph'} holds no kernel times")
    scale = 1e-3 / calls  # microseconds over all calls -> milliseconds per call
    by_type = [OpTime(k, k, v[0] * scale, v[1] / calls, v[0] / total, v[2].most_common(1)[0][0]) for k, v in per_type.items()]
    by_node = [OpTime(k, v[0], v[1] * scale, v[2] / calls, v[1] / total, v[3]) for k, v in per_node.items()]
    return OpProfile(graph, runtime, batch, calls, streams, total * scale, tuple(sorted(by_type, key=lambda t: -t.ms)),
                     tuple(sorted(by_node, key=lambda t: -t.ms)))


def summarise(events: list[dict], last_runs: int, graph: str = "", batch: int = 0, calls: int = 1) -> OpProfile:
    """The kernels of the last ``last_runs`` ``model_run`` events of an ONNX Runtime profile, per call of ``calls``.

    ``events``: the profile's JSON list. Earlier runs (warm-up) and session start are left out.
    """
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"), key=lambda e: e["ts"])
    if len(runs) < last_runs or last_runs < 1:
        raise SwintormerError(f"the profile of {graph or 'the graph'} has {len(runs)} runs; {last_runs} were asked for")
    windows = [(r["ts"], r["ts"] + r["dur"]) for r in runs[-last_runs:]]
    kernels = [(e["name"][: -len("_kernel_time")], e.get("args", {}).get("op_name", "?"), "", float(e["dur"]))
               for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
               and any(lo <= e["ts"] <= hi for lo, hi in windows)]
    return tally(kernels, calls, graph, "onnxruntime", batch)


def profile_graph(path: str | Path, feeds: Mapping[str, np.ndarray], calls: int = 3, threads: int = 0,
                  runtime: str = "onnxruntime", precision: str = "fp32") -> OpProfile:
    """Kernel times of the ONNX graph at ``path`` on the CPU, per call of ``feeds`` (batch-first arrays).

    One warm-up call, then ``calls`` timed calls through the session deblurring uses.
    ``precision``: OpenVINO's run precision (``fp32``/``bf16``); ONNX Runtime takes the graph's.
    """
    if calls < 1:
        raise SwintormerError(f"calls must be >= 1, got {calls}")
    if runtime not in RUNTIMES:
        raise SwintormerError(f"no profiler for runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    path = Path(path)
    batch = int(next(iter(feeds.values())).shape[0])
    if runtime == "openvino":
        return _openvino(path, feeds, calls, threads, precision, batch)
    from swintormer.backends.onnxruntime import OrtSession

    with tempfile.TemporaryDirectory(prefix="swintormer-profile-") as tmp:
        session = OrtSession(path, threads=threads, profile_dir=Path(tmp))
        for _ in range(calls + 1):
            session(**feeds)
        runs_per_call = -(-batch // session.run_batch) if session.run_batch else 1
        events = json.loads(Path(session.session.end_profiling()).read_text())
    return summarise(events, calls * runs_per_call, path.name, batch, calls)


def _openvino(path: Path, feeds: Mapping[str, np.ndarray], calls: int, threads: int, precision: str, batch: int) -> OpProfile:
    """OpenVINO's per-node times, gathered from every stream's request after each timed call."""
    from swintormer.backends.openvino import OvSession, _ov

    executed = _ov().ProfilingInfo.Status.EXECUTED
    session = OvSession(path, precision, threads, batch, profile=True)  # compiled for the batch: one round a call
    session(**feeds)
    kernels = []
    for _ in range(calls):
        session(**feeds)
        for request in session.requests[: session.used]:
            kernels += [(i.node_name, i.node_type, i.exec_type, i.real_time.total_seconds() * 1e6)
                        for i in request.get_profiling_info() if i.status == executed]
    return tally(kernels, calls, path.name, "openvino", batch, session.used)
