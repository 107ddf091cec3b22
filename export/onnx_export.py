"""PyTorch module -> verified ONNX graph, for any :class:`ExportSpec`.

``torch.onnx.export(dynamo=True)`` (opset 18, the onnxscript optimiser folds constants and
removes dead nodes), then ``onnx.checker`` and strict shape inference. fp16 graphs are the
TensorRT 11 kind: weights and activations in fp16 with the norms, L2 normalisations and
softmaxes kept in fp32 by the model code itself (see ``swintormer.layers``), I/O in fp32.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from swintormer.errors import SwintormerError
from swintormer.export.specs import BATCH, ExportSpec, Precision

__all__ = ["OPSET", "VerifyReport", "export_onnx", "graph_module", "rank_match_scalars", "verify_onnx"]

log = logging.getLogger(__name__)

OPSET = 18


class _Graph(nn.Module):
    """Casts float inputs to the graph precision and the output back to float32."""

    def __init__(self, module: nn.Module, spec: ExportSpec, dtype: torch.dtype) -> None:
        super().__init__()
        self.module, self.spec, self.dtype = module, spec, dtype

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        args = [x.to(self.dtype) if x.is_floating_point() else x for x in inputs]
        return self.module(*args).float()


def graph_module(module: nn.Module, spec: ExportSpec, precision: Precision) -> nn.Module:
    """The module as it is exported: a copy in eval mode, in ``precision``, on the torch attention path."""
    copied = copy.deepcopy(module).eval()  # attention kernels switch themselves off while exporting
    dtype = torch.float16 if precision == Precision.FP16 else torch.float32
    return _Graph(copied.to(dtype), spec, dtype).eval()


def _dynamic_shapes(spec: ExportSpec) -> dict[str, tuple[dict[int, object], ...]]:
    """``torch.export`` dynamic shapes for :class:`_Graph`'s ``*inputs``."""
    # torch.export needs max > min: a range of one size (a batch of 1) is exported as 1..2 (the
    # spec, and the profiles and configs made from it, still say 1)
    dims = {name: torch.export.Dim(name, min=lo, max=max(hi, lo + 1)) for name, (lo, _, hi) in spec.dim_ranges.items()}
    return {"inputs": tuple({i: dims[d] for i, d in enumerate(t.shape) if isinstance(d, str)} for t in spec.inputs)}


@contextlib.contextmanager
def _quiet_torch_logs():
    """The exporter and its optimiser log chatter (optional torchvision ops, replaced initializers)."""
    loggers = [logging.getLogger(name) for name in ("torch", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(spec: ExportSpec, module: nn.Module, path: str | Path, precision: Precision = Precision.FP32) -> Path:
    """Export ``module`` under ``spec``'s names and dynamic axes to ``path``; returns the path."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = graph_module(module, spec, precision)
    sample = spec.sample_inputs(batch=min(2, spec.max_batch))
    args = tuple(torch.from_numpy(sample[t.name]) for t in spec.inputs)
    chatter = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(chatter), _quiet_torch_logs(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, args, str(path), dynamo=True, opset_version=OPSET, external_data=False, optimize=True,
            input_names=[t.name for t in spec.inputs], output_names=[t.name for t in spec.outputs],
            dynamic_shapes=_dynamic_shapes(spec),
        )
    log.debug("%s", chatter.getvalue())
    model = onnx.load(str(path))
    _name_dynamic_axes(model, spec)
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    rank_match_scalars(model)
    onnx.save(model, str(path))
    return path


#: Elementwise ops whose rank-0 constant operand :func:`rank_match_scalars` reshapes.
BROADCAST_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"})


def rank_match_scalars(model) -> int:
    """Give every rank-0 constant operand of an elementwise op the other operand's rank (shape
    ``[1] * r``, same values, same broadcast result); returns how many operands changed.

    ONNX Runtime's CPU broadcaster takes a slow per-element path for a rank-0 operand against a
    tensor ending in size-1 axes: ``1 + sum(e, keepdim)`` in ``softmax_one`` on ``[Bw, h, N, 1]``
    took 0.85 ms a call where a ``[1, 1, 1, 1]`` constant takes 0.016 (ORT 1.32, 2 threads).
    Needs the graph's shape inference (``value_info``) to know the other operand's rank.
    """
    from onnx import numpy_helper

    graph = model.graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in (*graph.input, *graph.value_info, *graph.output)
             if v.type.tensor_type.HasField("shape")}
    inits = {t.name: t for t in graph.initializer}
    ranks.update({name: len(t.dims) for name, t in inits.items()})
    replaced: set[str] = set()
    changed = 0
    for node in graph.node:
        if node.op_type not in BROADCAST_OPS or len(node.input) != 2:
            continue
        for i, name in enumerate(node.input):
            other = ranks.get(node.input[1 - i], 0)
            if name not in inits or inits[name].dims or other < 1:
                continue
            # one copy per use (4 bytes each): a constant shared by ops of different precisions
            # would stop fp16 converters (onnxconverter-common) from casting it for each
            copy = f"{name}_rank{other}_{changed}"
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(inits[name]).reshape((1,) * other), copy))
            node.input[i] = copy
            replaced.add(name)
            changed += 1
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for t in [t for t in graph.initializer if t.name in replaced and t.name not in used]:
        graph.initializer.remove(t)
    return changed


def _name_dynamic_axes(model, spec: ExportSpec) -> None:
    """Give the graph's dynamic axes the spec's names (the exporter invents its own)."""
    for tensors, graph_values in ((spec.inputs, model.graph.input), (spec.outputs, model.graph.output)):
        by_name = {v.name: v for v in graph_values}
        for t in tensors:
            if t.name not in by_name:
                raise SwintormerError(f"exported graph lacks tensor {t.name!r}; it has {sorted(by_name)}")
            dims = by_name[t.name].type.tensor_type.shape.dim
            for d, want in zip(dims, t.shape):
                if isinstance(want, str):
                    d.ClearField("dim_value")
                    d.dim_param = want


@dataclass(frozen=True)
class VerifyReport:
    """ONNX Runtime vs PyTorch fp32 on random inputs: worst case over the batches tried."""

    component: str
    precision: str
    max_abs_error: float
    psnr_db: float
    batches: tuple[int, ...]

    def line(self) -> str:
        return f"{self.component} [{self.precision}]: max |ORT - PyTorch| = {self.max_abs_error:.2e}, PSNR {self.psnr_db:.1f} dB (batches {', '.join(map(str, self.batches))})"


def verify_onnx(spec: ExportSpec, module: nn.Module, path: Path, precision: Precision, batches: tuple[int, ...] = (1, 2)) -> VerifyReport:
    """Run the graph in ONNX Runtime (CPU) against the fp32 PyTorch module.

    PSNR uses the reference output's peak-to-peak range as the data range (1 for images).
    """
    from swintormer.backends.onnxruntime import OrtSession
    from swintormer.metrics import psnr

    session = OrtSession(path)
    reference = graph_module(module, spec, Precision.FP32)
    worst_err, worst_psnr = 0.0, float("inf")
    for b in batches:
        b = min(b, spec.max_batch)
        sample = spec.sample_inputs(batch=b, seed=b)
        got = session(**sample)
        with torch.no_grad():
            want = reference(*(torch.from_numpy(sample[t.name]) for t in spec.inputs)).numpy()
        if got.shape != want.shape:
            raise SwintormerError(f"{path.name}: ONNX output shape {got.shape} != PyTorch {want.shape}")
        span = float(np.ptp(want)) or 1.0
        worst_err = max(worst_err, float(np.abs(got - want).max()))
        worst_psnr = min(worst_psnr, psnr(got, want, data_range=span))
    return VerifyReport(spec.component, precision.value, worst_err, worst_psnr, tuple(batches))
