"""``swintormer export --check``: every graph compared across runners with Polygraphy, and linted.

Polygraphy is the tool TensorRT users reach for to compare and debug graphs; here it does what
it is made for, on whatever runners this machine has:

- ``Comparator.run`` over an ``OnnxrtRunner`` (ONNX Runtime, CPU) and a ``PytRunner`` (the
  PyTorch module the graph was exported from, fp32) on the export spec's inputs at the smallest
  and the largest batch, then ``Comparator.compare_accuracy`` with ``CompareFunc.simple`` at the
  precision's tolerances;
- ``polygraphy check lint`` (its JSON report): nodes ONNX Runtime rejects or warns about.

- on a mismatch of a reduced-precision graph (fp16, int8, fp8), the layer-wise comparison
  (``ModifyOutputs(outputs=MARK_ALL)``: every tensor an output) of the graph against the fp32
  graph of the same component, both on ONNX Runtime, naming the first layer in graph order that
  leaves the tolerances (``first_divergence``).

Where TensorRT and a GPU are present and the engines were built, a ``TrtRunner`` over each
engine joins the comparison (ONNX Runtime and TensorRT each against PyTorch); that part has not
run yet (no machine this project has used had TensorRT), and the layer-wise comparison stays on
ONNX Runtime.
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

__all__ = ["CheckReport", "Divergence", "TOLERANCES", "check_graph", "first_divergence", "lint_graph"]

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
        from polygraphy.logger import G_LOGGER
    except ImportError:
        raise SwintormerError("--check needs Polygraphy: pip install 'swintormer[export]' (polygraphy, onnx-graphsurgeon)") from None
    G_LOGGER.module_severity = G_LOGGER.WARNING  # its per-iteration tables; mismatches are errors and still print
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


def check_graph(spec: ExportSpec, module: nn.Module, path: Path, precision: Precision, lint: bool = True,
                engine: Path | None = None) -> CheckReport:
    """Compare the graph at ``path`` (and the TensorRT ``engine`` built from it, if given) with
    ``module`` through Polygraphy's comparator, every runner against PyTorch; lint the graph."""
    from swintormer.export.onnx_export import graph_module

    OnnxrtRunner, SessionFromOnnx, PytRunner, TensorMetadata, Comparator, CompareFunc = _polygraphy()
    reference = graph_module(module, spec, Precision.FP32).eval()
    metadata = TensorMetadata()
    for t in spec.inputs:
        metadata.add(t.name, np.dtype(t.dtype), tuple(t.shape))  # named dims are dynamic
    outputs = [t.name for t in spec.outputs]

    runners = [_cpu_runner(PytRunner)(lambda: reference, metadata, outputs, name="pytorch"),
               OnnxrtRunner(SessionFromOnnx(str(path), providers=["CPUExecutionProvider"]), name="onnxruntime")]
    if engine is not None:  # only where TensorRT and a GPU are (not run yet: no such machine so far)
        from polygraphy.backend.common import BytesFromPath
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        runners.append(TrtRunner(EngineFromBytes(BytesFromPath(str(engine))), name="tensorrt"))
    feeds = [spec.sample_inputs(batch=b, seed=b) for b in sorted({1, spec.max_batch})]
    results = Comparator.run(runners, data_loader=feeds)
    atol, rtol = TOLERANCES[precision]
    against_pytorch = [(0, i) for i in range(1, len(runners))]
    accuracy = Comparator.compare_accuracy(results, comparisons=against_pytorch, compare_func=CompareFunc.simple(atol=atol, rtol=rtol))
    worst = 0.0
    (_, want_results), *others = results.items()
    for _, got_results in others:
        for got, want in zip(got_results, want_results):
            for name in outputs:
                a, b = np.asarray(got[name], dtype=np.float64), np.asarray(want[name], dtype=np.float64)
                worst = max(worst, float(np.abs(a - b).max()))
    problems = tuple(lint_graph(path)) if lint else ()
    return CheckReport(spec.component, tuple(r.name for r in runners[1:]) + ("pytorch",), bool(accuracy), worst, problems)


@dataclass(frozen=True)
class Divergence:
    """The first tensor, in the graph's node order, outside the tolerances: its producer and error."""

    tensor: str
    node: str
    op_type: str
    max_abs_error: float
    compared: int  # tensors both graphs have, compared in order

    def line(self) -> str:
        return (f"first divergence (of {self.compared} tensors, layer by layer): {self.node} ({self.op_type}) -> "
                f"{self.tensor}, max abs error {self.max_abs_error:.2e}")


def first_divergence(reference: Path, path: Path, feed: dict[str, np.ndarray], precision: Precision) -> Divergence | None:
    """Run both graphs with every tensor marked as an output (Polygraphy's ``MARK_ALL``) on ONNX
    Runtime and return the first tensor of ``path``, in its node order, that also exists in
    ``reference`` and differs beyond ``precision``'s tolerances (None: none does).

    Memory: every intermediate tensor of one run is kept, so ``feed`` should be one small batch.
    """
    import onnx
    from polygraphy import constants
    from polygraphy.backend.onnx import BytesFromOnnx, ModifyOutputs, OnnxFromPath

    OnnxrtRunner, SessionFromOnnx, _, _, Comparator, _ = _polygraphy()

    def runner(p: Path, name: str):
        return OnnxrtRunner(SessionFromOnnx(BytesFromOnnx(ModifyOutputs(OnnxFromPath(str(p)), outputs=constants.MARK_ALL)),
                                            providers=["CPUExecutionProvider"]), name=name)

    results = Comparator.run([runner(reference, "fp32"), runner(path, precision.value)], data_loader=[feed])
    (_, [want]), (_, [got]) = results.items()
    atol, rtol = TOLERANCES[precision]
    producers = [(out, node) for node in onnx.load(str(path), load_external_data=False).graph.node for out in node.output]
    compared = 0
    for tensor, node in producers:
        if tensor not in want or tensor not in got:
            continue
        a, b = np.asarray(got[tensor]), np.asarray(want[tensor])
        if a.shape != b.shape or not np.issubdtype(b.dtype, np.floating):
            continue
        compared += 1
        a, b = a.astype(np.float64), b.astype(np.float64)
        if not np.all(np.abs(a - b) <= atol + rtol * np.abs(b)):
            return Divergence(tensor, node.name, node.op_type, float(np.abs(a - b).max()), compared)
    return None


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
