"""Inference backends behind the shared tiler, as a table.

Each backend module exports one factory, ``tile_fn(model, request, graphs) -> TileFn``, that
turns a :class:`~swintormer.model.DeblurModel` into the tile function the tiler runs:

- ``torch``: the PyTorch modules (:mod:`swintormer.backends.torch`);
- ``onnxruntime``: the exported ONNX graphs (:mod:`swintormer.backends.onnxruntime`);
- ``openvino``: the exported ONNX graphs through OpenVINO, CPU, fp32/bf16 (:mod:`swintormer.backends.openvino`);
- ``tensorrt``: serialized TensorRT engines, GPU only (:mod:`swintormer.backends.tensorrt`).

:data:`BACKENDS` is what the dispatcher (:func:`swintormer.inference.tile_function`) and the
command line's ``--backend``/``--precision`` choices read. A backend that runs exported graphs
says which (``graphs``); the dispatcher has them built first. Backend modules import only what
lies below them (the model, the prior sampler, the export specs); heavy runtimes are imported
inside the factories.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable, Literal

from swintormer.diffusion.prior import PriorSettings
from swintormer.errors import SwintormerError

__all__ = ["AUTO_ORDER", "BACKENDS", "PROVIDERS", "Backend", "BackendRequest", "get_backend", "resolve_backend"]

#: short names for ONNX Runtime execution providers
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


@dataclass(frozen=True)
class BackendRequest:
    """How a backend should run: ``device`` (torch), graph ``precision`` and execution ``provider``
    (onnxruntime), the prior's ``settings`` (None: the model's own), CPU ``threads`` (0: the
    runtime's default), the largest ``batch`` of tiles a call carries (0: unknown; the tiler's
    batch, which openvino compiles static shapes for)."""

    device: str = "auto"
    precision: str = "fp32"
    provider: str = "cpu"
    settings: PriorSettings | None = None
    threads: int = 0
    batch: int = 0


@dataclass(frozen=True)
class Backend:
    """One row of the table: where its factory lives and what it can run."""

    name: str
    description: str
    module: str
    precisions: tuple[str, ...]
    #: what must be built before the factory runs: nothing, ONNX graphs, or TensorRT engines
    graphs: Literal["", "onnx", "engines"] = ""
    #: run precisions computed from a graph of another precision: ``(("bf16", "fp32"),)``
    graph_of: tuple[tuple[str, str], ...] = ()
    #: the package whose presence makes the backend usable (checked without importing it)
    requires: str = ""

    def installed(self) -> bool:
        return not self.requires or importlib.util.find_spec(self.requires) is not None

    def graph_precision(self, precision: str) -> str:
        """The precision of the graphs a run at ``precision`` needs exported."""
        return dict(self.graph_of).get(precision, precision)

    def factory(self) -> Callable:
        """The backend's ``tile_fn`` (importing its module)."""
        return importlib.import_module(self.module).tile_fn

    def check(self, request: BackendRequest) -> None:
        if request.precision not in self.precisions:
            others = [b.name for b in BACKENDS.values() if request.precision in b.precisions]
            raise SwintormerError(
                f"backend {self.name} runs {', '.join(self.precisions)}, not {request.precision}; "
                f"{request.precision} needs --backend {' or '.join(others)}"
            )
        if self.name == "openvino":
            importlib.import_module(self.module).check_precision(request.precision)
        if self.name == "onnxruntime" and request.provider not in PROVIDERS:
            raise SwintormerError(f"unknown provider {request.provider!r}; choose one of {', '.join(PROVIDERS)}")


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("torch", "the PyTorch modules (CPU or CUDA)", "swintormer.backends.torch", ("fp32",)),
        Backend("onnxruntime", "ONNX Runtime over the exported graphs (exported on first use)",
                "swintormer.backends.onnxruntime", ("fp32", "fp16", "int8", "fp8"), graphs="onnx", requires="onnxruntime"),
        Backend("openvino", "OpenVINO over the exported graphs, CPU (bf16 where the CPU has bf16 units)",
                "swintormer.backends.openvino", ("fp32", "bf16"), graphs="onnx", graph_of=(("bf16", "fp32"),),
                requires="openvino"),
        Backend("tensorrt", "TensorRT engines built from the exported graphs (GPU and TensorRT only)",
                "swintormer.backends.tensorrt", ("fp32", "fp16", "int8", "fp8"), graphs="engines", requires="tensorrt"),
    )
}


#: what ``auto`` picks from, fastest first (measured side by side: BENCHMARKS.md, backends), by device
AUTO_ORDER = {"cuda": ("tensorrt", "torch"), "cpu": ("openvino", "onnxruntime", "torch")}


def get_backend(name: str) -> Backend:
    """The table's row for ``name``, or a clear error listing the choices."""
    if name not in BACKENDS:
        raise SwintormerError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
    return BACKENDS[name]


def _on_gpu(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    import torch

    return torch.cuda.is_available()


def resolve_backend(name: str, request: BackendRequest = BackendRequest()) -> str:
    """``name``, or for ``"auto"`` the fastest backend installed here that runs ``request.precision``.

    On a CUDA device: TensorRT (when it and a GPU work), else torch; on the CPU: OpenVINO, else ONNX
    Runtime, else torch. A precision none of them runs raises the backend table's own error.
    """
    if name != "auto":
        return name
    order = AUTO_ORDER["cuda" if _on_gpu(request.device) else "cpu"]
    for candidate in order:
        backend = BACKENDS[candidate]
        if request.precision not in backend.precisions or not backend.installed():
            continue
        if candidate == "tensorrt" and not _on_gpu("auto"):  # TensorRT needs a visible GPU too
            continue
        return candidate
    present = [b for b in order if BACKENDS[b].installed()]
    raise SwintormerError(f"no backend installed here runs {request.precision} (present: {', '.join(present)}); "
                          f"{request.precision} needs " + " or ".join(b.name for b in BACKENDS.values() if request.precision in b.precisions))
