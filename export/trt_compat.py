"""Can TensorRT parse this ONNX graph? Checked without TensorRT, against its published support matrix.

``tensorrt_onnx_ops.txt`` (beside this file) lists every operator TensorRT's ONNX parser
supports and the data types it accepts, with its source and version. The check walks the
graph after shape inference: every node's operator must be listed, its data operand must have
an accepted type, reduce/squeeze axes must be constants, the opset must be in range,
and every axis that is not one of the spec's dynamic axes must be static.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from swintormer.export.specs import ExportSpec

__all__ = ["OPSET_RANGE", "OpSupport", "check_tensorrt_compat", "supported_ops"]

OPS_FILE = Path(__file__).resolve().parent / "tensorrt_onnx_ops.txt"
OPSET_RANGE = (9, 24)
_CONSTANT_AXES = {"Squeeze": 1, "Unsqueeze": 1} | {
    op: 1 for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
                     "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")
}


@dataclass(frozen=True)
class OpSupport:
    types: frozenset[str]
    restriction: str


@lru_cache(maxsize=1)
def supported_ops() -> dict[str, OpSupport]:
    """``{op_type: OpSupport}`` parsed from ``tensorrt_onnx_ops.txt``."""
    ops = {}
    for line in OPS_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        head, _, restriction = line.partition("|")
        name, types = head.split()
        ops[name] = OpSupport(frozenset(types.split(",")), restriction.strip())
    return ops


def _type_names() -> dict[int, str]:
    from onnx import TensorProto as T

    return {
        T.FLOAT: "FP32", T.FLOAT16: "FP16", T.BFLOAT16: "BF16", T.INT32: "INT32", T.INT64: "INT64",
        T.INT8: "INT8", T.UINT8: "UINT8", T.FLOAT8E4M3FN: "FP8", T.BOOL: "BOOL", T.DOUBLE: "DOUBLE",
    }


def _dims(value) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _static_problems(model, spec: ExportSpec) -> list[str]:
    dynamic = set(spec.dim_ranges)
    problems = []
    for value in list(model.graph.input) + list(model.graph.output):
        for axis, d in enumerate(_dims(value)):
            if isinstance(d, str) and d not in dynamic:
                problems.append(f"{value.name}: axis {axis} is dynamic ({d!r}) but the spec fixes it")
            if d == 0:
                problems.append(f"{value.name}: axis {axis} has unknown size")
    return problems


def check_tensorrt_compat(model, spec: ExportSpec) -> list[str]:
    """Problems that would stop TensorRT's ONNX parser (an empty list means none found)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(model)
    ops, names = supported_ops(), _type_names()
    problems = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        problems.append(f"opset {opset} outside TensorRT's {OPSET_RANGE}")
    types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    constants = {i.name for i in model.graph.initializer}
    constants.update(o for n in model.graph.node if n.op_type == "Constant" for o in n.output)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{node.name}: custom-domain op {node.domain}::{node.op_type}")
            continue
        support = ops.get(node.op_type)
        if support is None:
            problems.append(f"{node.name}: {node.op_type} is not supported by TensorRT's ONNX parser")
            continue
        if node.input and node.input[0]:  # the matrix's types are those of the data operand
            t = names.get(types.get(node.input[0], 0), "UNKNOWN")
            if t not in support.types:
                problems.append(f"{node.name}: {node.op_type} on {t} data; TensorRT accepts {sorted(support.types)}")
        idx = _CONSTANT_AXES.get(node.op_type)
        if idx is not None and len(node.input) > idx and node.input[idx] and node.input[idx] not in constants:
            problems.append(f"{node.name}: {node.op_type} axes must be constant ({support.restriction})")
    return problems + _static_problems(model, spec)
