"""``swintormer export --check``: every graph compared across runners with Polygraphy, and linted.

Polygraphy is the tool TensorRT users reach for to compare and debug graphs; here it does what
it is made for, on whatever runners this machine has:

- ``Comparator.run`` over an ``OnnxrtRunner`` (ONNX Runtime, CPU) and a ``PytRunner`` (the
  PyTorch module the graph was exported from, fp32) on the export spec's inputs at the smallest
  and the largest batch, then ``Comparator.compare_accuracy`` with ``CompareFunc.simple`` at the
  precision's tolerances;
- ``polygraphy check lint`` (its JSON report): nodes ONNX Runtime rejects or warns about.

Where TensorRT and a GPU are present, TensorRT runners belong beside these (``TrtRunner`` over
``EngineFromNetwork``) with ``--onnx-outputs mark all`` on a mismatch to name the first layer
that diverges; that part has not run here (no TensorRT).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.nn as nn

from swintormer.errors import SwintormerError
from swintormer.export.specs import ExportSpec, Precision

__all__ = ["CheckReport", "TOLERANCES", "check_graph", "lint_graph"]

#: ``(atol, rtol)`` of CompareFunc.simple per graph precision (fp16 graphs against fp32 PyTorch)
TOLERANCES = {Precision.FP32: (1e-4, 1e-3), Precision.FP16: (2e-2, 5e-2), Precision.INT8: (1e-1, 1e-1),
              Precision.FP8: (2e-1, 2e-1)}


@dataclass(frozen=True)
class CheckReport:
    component: str
    runners: tuple[str, ...]
    passed: bool
    max_abs_error: float
    lint_problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.passed and not self.lint_problems

    def line(self) -> str:
        lint = "lint clean" if not self.lint_problems else f"lint: {len(self.lint_problems)} problem(s): {'; '.join(self.lint_problems[:3])}"
        verdict = "PASSED" if self.passed else "FAILED"
        return f"{self.component:9s} polygraphy {' vs '.join(self.runners)}: {verdict} (max abs error {self.max_abs_error:.2e}); {lint}"


def _polygraphy():
    try:
        from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
        from polygraphy.backend.pyt import PytRunner
        from polygraphy.common import TensorMetadata
        from polygraphy.comparator import Comparator, CompareFunc
    except ImportError:
        raise SwintormerError("--check needs Polygraphy: pip install 'swintormer[export]' (polygraphy, onnx-graphsurgeon)") from None
    return OnnxrtRunner, SessionFromOnnx, PytRunner, TensorMetadata, Comparator, CompareFunc


def _cpu_runner(PytRunner):
    """Polygraphy's PytRunner on the CPU (0.53's ``infer_impl`` moves inputs to CUDA and returns a
    pair the comparator does not take); one output per name."""
    import time

    import torch
    from polygraphy import util

    class CpuPytRunner(PytRunner):
        @util.check_called_by("infer")
        def infer_impl(self, feed_dict):
            with torch.no_grad():
                inputs = [torch.from_numpy(np.asarray(v)) for v in feed_dict.values()]
                start = time.time()
                out = self.model(*inputs)
                self.inference_time = time.time() - start
            out = out if isinstance(out, (tuple, list)) else (out,)
            return {name: o.cpu().numpy() for name, o in zip(self.output_names, out)}

    return CpuPytRunner


def check_graph(spec: ExportSpec, module: nn.Module, path: Path, precision: Precision, lint: bool = True) -> CheckReport:
    """Compare the graph at ``path`` with ``module`` through Polygraphy's comparator (and lint it)."""
    from swintormer.export.onnx_export import graph_module

    OnnxrtRunner, SessionFromOnnx, PytRunner, TensorMetadata, Comparator, CompareFunc = _polygraphy()
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.WARNING  # its per-iteration tables; mismatches are errors and still print
    reference = graph_module(module, spec, Precision.FP32).eval()
    metadata = TensorMetadata()
    for t in spec.inputs:
        metadata.add(t.name, np.dtype(t.dtype), tuple(t.shape))  # named dims are dynamic
    outputs = [t.name for t in spec.outputs]

    runners = [OnnxrtRunner(SessionFromOnnx(str(path), providers=["CPUExecutionProvider"]), name="onnxruntime"),
               _cpu_runner(PytRunner)(lambda: reference, metadata, outputs, name="pytorch")]
    feeds = [spec.sample_inputs(batch=b, seed=b) for b in sorted({1, spec.max_batch})]
    results = Comparator.run(runners, data_loader=feeds)
    atol, rtol = TOLERANCES[precision]
    accuracy = Comparator.compare_accuracy(results, compare_func=CompareFunc.simple(atol=atol, rtol=rtol))
    worst = 0.0
    (_, ort_results), (_, pt_results) = results.items()
    for got, want in zip(ort_results, pt_results):
        for name in outputs:
            a, b = np.asarray(got[name], dtype=np.float64), np.asarray(want[name], dtype=np.float64)
            worst = max(worst, float(np.abs(a - b).max()))
    problems = tuple(lint_graph(path)) if lint else ()
    return CheckReport(spec.component, ("onnxruntime", "pytorch"), bool(accuracy), worst, problems)


def lint_graph(path: Path) -> list[str]:
    """Problems ``polygraphy check lint`` reports for the graph (exceptions and warnings), as lines."""
    _polygraphy()
    exe = Path(sys.executable).with_name("polygraphy")
    command = [str(exe)] if exe.is_file() else [sys.executable, "-c", "import sys; from polygraphy.tools._main import main; sys.exit(main())"]
    report = path.with_suffix(".lint.json")
    res = subprocess.run([*command, "check", "lint", str(path), "-o", str(report)], capture_output=True, text=True, timeout=600)
    if not report.is_file():
        raise SwintormerError(f"polygraphy check lint {path.name} wrote no report:\n{(res.stdout + res.stderr)[-1500:]}")
    data = json.loads(report.read_text())
    entries = data.get("lint_entries", [])
    problems = [f"{e.get('level', '?')}: {str(e.get('message', '')).splitlines()[0][:200]}" for e in entries
                if str(e.get("level", "")).lower() in ("exception", "warning")]
    failing = data.get("summary", {}).get("failing", [])
    return problems + ([f"failing nodes: {', '.join(failing[:5])}"] if failing else [])
