"""TensorRT backend: serialized engines behind the same tile function (GPU only).

Thin, on the documented I/O-tensor API of TensorRT 10 and 11 (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``), with torch CUDA tensors as buffers, run as
NVIDIA's demos do: buffers once per (engine, profile, shapes), a CUDA graph captured per shape
and replayed, one stream, one device-memory block shared by a model's engines. The decisions are
:mod:`swintormer.backends.trt_plan` (tested on a CPU); this module only runs where TensorRT and
a GPU exist, which CI does not have, and has not run yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from swintormer.backends import BackendRequest
from swintormer.backends.compose import graph_tile_fn
from swintormer.backends.trt_plan import BufferKey, BufferPool, Profile, select_profile, shared_memory_bytes
from swintormer.errors import SwintormerError
from swintormer.model import DeblurModel
from swintormer.tiling import TileFn

__all__ = ["TrtRuntime", "TrtSession", "tile_fn", "trt_tile_fn"]


class TrtRuntime:
    """The engines of one model on one stream, sharing one device-memory block (they never run at
    the same time), each run through :class:`TrtSession`."""

    def __init__(self, plans: Mapping[str, Path], graphs: bool = True) -> None:
        import tensorrt as trt

        self.trt, self.stream = trt, torch.cuda.Stream()
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        engines = {}
        for name, plan in plans.items():
            engine = runtime.deserialize_cuda_engine(Path(plan).read_bytes())
            if engine is None:
                raise SwintormerError(f"TensorRT could not load {plan} (built by another TensorRT version or GPU?)")
            engines[name] = engine
        need = {n: getattr(e, "device_memory_size_v2", None) or e.device_memory_size for n, e in engines.items()}
        self.memory = torch.empty(max(shared_memory_bytes(need), 1), dtype=torch.uint8, device="cuda")
        self.sessions = {n: TrtSession(n, e, self, graphs) for n, e in engines.items()}

    def context_for(self, engine):
        """An execution context whose activations live in the shared block."""
        trt = self.trt
        strategy = getattr(trt, "ExecutionContextAllocationStrategy", None)
        if strategy is not None:
            context = engine.create_execution_context(strategy.USER_MANAGED)
        else:  # TensorRT before 10
            context = engine.create_execution_context_without_device_memory()
        if hasattr(context, "set_device_memory"):
            context.set_device_memory(self.memory.data_ptr(), self.memory.numel())
        else:
            context.device_memory = self.memory.data_ptr()
        return context


class TrtSession:
    """One engine: ``session(**inputs) -> first output`` (CUDA tensors).

    Per (profile, input shapes): buffers allocated once, the enqueue run once and then captured in
    a CUDA graph that later calls replay; inputs are copied into the bound buffers, the output is
    cloned out of its buffer (the next call of the same shapes reuses it).
    """

    def __init__(self, name: str, engine, runtime: TrtRuntime, graphs: bool = True) -> None:
        trt = runtime.trt
        self.name, self.engine, self.runtime, self.use_graphs = name, engine, runtime, graphs
        self.context = runtime.context_for(engine)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.profiles = [Profile(i, {n: tuple(tuple(s) for s in engine.get_tensor_profile_shape(n, i)) for n in self.inputs})
                         for i in range(engine.num_optimization_profiles)]
        self.pool = BufferPool(lambda shape, dtype: torch.empty(shape, dtype=dtype, device="cuda"),
                               on_evict=lambda key: self._graphs.pop(key, None))
        self._graphs: dict[BufferKey, torch.cuda.CUDAGraph] = {}
        self._profile: int | None = None

    def _torch_dtype(self, name: str) -> torch.dtype:
        t = self.runtime.trt
        table = {t.float32: torch.float32, t.float16: torch.float16, t.int64: torch.int64, t.int32: torch.int32}
        return table[self.engine.get_tensor_dtype(name)]

    def _bind(self, key: BufferKey, shapes: dict[str, tuple[int, ...]]) -> tuple[dict[str, torch.Tensor], bool]:
        stream = self.runtime.stream
        if self._profile != key.profile:
            self.context.set_optimization_profile_async(key.profile, stream.cuda_stream)
            self._profile = key.profile
        for name, shape in shapes.items():
            self.context.set_input_shape(name, shape)
        tensors = {n: (shapes[n], self._torch_dtype(n)) for n in self.inputs}
        tensors.update({n: (tuple(self.context.get_tensor_shape(n)), self._torch_dtype(n)) for n in self.outputs})
        buffers, new = self.pool.get(key, tensors)
        for name, buf in buffers.items():
            self.context.set_tensor_address(name, buf.data_ptr())
        return buffers, new

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        shapes = {n: tuple(inputs[n].shape) for n in self.inputs}
        profile = select_profile(self.profiles, shapes, self.name)
        key = BufferKey.of(self.name, profile.index, shapes)
        stream = self.runtime.stream
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            buffers, new = self._bind(key, shapes)
            for name in self.inputs:
                buffers[name].copy_(inputs[name].to("cuda", self._torch_dtype(name)), non_blocking=True)
            graph = self._graphs.get(key)
            if graph is not None:
                graph.replay()
            else:
                if not self.context.execute_async_v3(stream.cuda_stream):
                    raise SwintormerError(f"TensorRT execution of {self.name} failed")
                if self.use_graphs and not new:  # the second call of these shapes: capture (the first warmed up)
                    self._graphs[key] = self._capture(stream)
            out = buffers[self.outputs[0]].clone()
        torch.cuda.current_stream().wait_stream(stream)
        return out

    def _capture(self, stream: torch.cuda.Stream) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        stream.synchronize()
        with torch.cuda.graph(graph, stream=stream):
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise SwintormerError(f"TensorRT could not enqueue {self.name} into a CUDA graph")
        return graph


def trt_tile_fn(plans: Mapping[str, Path], settings, scheduler) -> TileFn:
    """A tile function over engines ``{"restorer": ..., ["encoder": ..., "denoiser": ...]}``: tiles
    uploaded once a batch, the prior kept on the GPU between the engines."""
    return graph_tile_fn(TrtRuntime(plans).sessions, settings, scheduler, device="cuda")


def tile_fn(model: DeblurModel, request: BackendRequest, graphs: Mapping[str, Path] | None) -> TileFn:
    """The backend's factory: ``graphs`` are the model's TensorRT engines by component."""
    if not graphs:
        raise SwintormerError("the tensorrt backend needs built engines (swintormer.inference.tile_function builds them)")
    return trt_tile_fn(graphs, request.settings or model.prior, model.scheduler)
