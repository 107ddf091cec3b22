"""TensorRT backend: serialized engines behind the same tile function (GPU only).

Thin, on the documented I/O-tensor API of TensorRT 10 and 11 (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``), with torch CUDA tensors as buffers. It runs only
where TensorRT and a GPU exist, which CI does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from swintormer.backends import BackendRequest
from swintormer.backends.compose import graph_tile_fn
from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.tiling import TileFn

__all__ = ["TrtSession", "tile_fn", "trt_tile_fn"]


class TrtSession:
    """One engine: ``session(**inputs) -> first output`` (CUDA tensors)."""

    def __init__(self, plan: str | Path) -> None:
        import tensorrt as trt

        self.trt = trt
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(Path(plan).read_bytes())
        if self.engine is None:
            raise SwintormerError(f"TensorRT could not load {plan} (built by another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    def _torch_dtype(self, name: str) -> torch.dtype:
        t = self.trt
        table = {t.float32: torch.float32, t.float16: torch.float16, t.int64: torch.int64, t.int32: torch.int32}
        return table[self.engine.get_tensor_dtype(name)]

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        keep = []
        for name in self.inputs:
            x = inputs[name].to("cuda", self._torch_dtype(name)).contiguous()
            keep.append(x)
            self.context.set_input_shape(name, tuple(x.shape))
            self.context.set_tensor_address(name, x.data_ptr())
        outs = {}
        for name in self.outputs:
            outs[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self._torch_dtype(name), device="cuda")
            self.context.set_tensor_address(name, outs[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise SwintormerError("TensorRT execution failed")
        stream.synchronize()
        return outs[self.outputs[0]]


def trt_tile_fn(plans: Mapping[str, Path], settings, scheduler) -> TileFn:
    """A tile function over engines ``{"restorer": ..., ["encoder": ..., "denoiser": ...]}``."""
    return graph_tile_fn({name: TrtSession(path) for name, path in plans.items()}, settings, scheduler)


def tile_fn(model: DeblurModel, request: BackendRequest, graphs: Mapping[str, Path] | None) -> TileFn:
    """The backend's factory: ``graphs`` are the model's TensorRT engines by component."""
    if not graphs:
        raise SwintormerError("the tensorrt backend needs built engines (swintormer.inference.tile_function builds them)")
    return trt_tile_fn(graphs, request.settings or model.prior, model.scheduler)
