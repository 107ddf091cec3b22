"""Inference backends behind the shared tiler, as a table.

Each backend module exports one factory, ``tile_fn(model, request, graphs) -> TileFn``, that
turns a :class:`~swintormer.model.DeblurModel` into the tile function the tiler runs:

- ``torch``: the PyTorch modules (:mod:`swintormer.backends.torch`);
- ``onnxruntime``: the exported ONNX graphs (:mod:`swintormer.backends.onnxruntime`);
- ``tensorrt``: serialized TensorRT engines, GPU only (:mod:`swintormer.backends.tensorrt`).

:data:`BACKENDS` is what the dispatcher (:func:`swintormer.inference.tile_function`) and the
command line's ``--backend``/``--precision`` choices read. A backend that runs exported graphs
says which (``graphs``); the dispatcher has them built first. Backend modules import only what
lies below them (the model, the prior sampler, the export specs); heavy runtimes are imported
inside the factories.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Literal

from swintormer.diffusion.prior import PriorSettings
from swintormer.errors import SwintormerError

__all__ = ["BACKENDS", "PROVIDERS", "Backend", "BackendRequest", "get_backend"]

#: short names for ONNX Runtime execution providers
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


@dataclass(frozen=True)
class BackendRequest:
    """How a backend should run: ``device`` (torch), graph ``precision`` and execution ``provider``
    (onnxruntime), the prior's ``settings`` (None: the model's own), CPU ``threads`` (0: the
    runtime's default)."""

    device: str = "auto"
    precision: str = "fp32"
    provider: str = "cpu"
    settings: PriorSettings | None = None
    threads: int = 0


@dataclass(frozen=True)
class Backend:
    """One row of the table: where its factory lives and what it can run."""

    name: str
    description: str
    module: str
    precisions: tuple[str, ...]
    #: what must be built before the factory runs: nothing, ONNX graphs, or TensorRT engines
    graphs: Literal["", "onnx", "engines"] = ""

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
        if self.name == "onnxruntime" and request.provider not in PROVIDERS:
            raise SwintormerError(f"unknown provider {request.provider!r}; choose one of {', '.join(PROVIDERS)}")


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("torch", "the PyTorch modules (CPU or CUDA)", "swintormer.backends.torch", ("fp32",)),
        Backend("onnxruntime", "ONNX Runtime over the exported graphs (exported on first use)",
                "swintormer.backends.onnxruntime", ("fp32", "fp16", "int8"), graphs="onnx"),
        Backend("tensorrt", "TensorRT engines built from the exported graphs (GPU and TensorRT only)",
                "swintormer.backends.tensorrt", ("fp32", "fp16", "int8"), graphs="engines"),
    )
}


def get_backend(name: str) -> Backend:
    """The table's row for ``name``, or a clear error listing the choices."""
    if name not in BACKENDS:
        raise SwintormerError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]
