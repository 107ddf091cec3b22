"""ONNX graph -> serialized TensorRT engine, on the documented TensorRT 10 and 11 APIs.

Precision lives in the graph (fp16 graphs from :mod:`swintormer.export.onnx_export`, int8/fp8
QDQ graphs from :mod:`swintormer.export.quantize`), so the network is strongly typed on both
versions: TensorRT 11 networks always are, and on 10 we ask for ``STRONGLY_TYPED`` instead of the
weak-typing ``BuilderFlag.FP16`` that 11 removed. The build runs through Polygraphy's TensorRT
loaders, the tool TensorRT users reach for; the optimisation profile comes from the export spec
(:func:`engine_profile`, tested on a CPU), workspace limit, timing cache and builder
optimisation level are options. This module is deliberately thin: the build only runs where
TensorRT and a GPU exist, which CI does not have, and has not run yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from swintormer.errors import SwintormerError
from swintormer.export.specs import ExportSpec, Precision
from swintormer.files import atomic_write_bytes

__all__ = ["EngineOptions", "build_engine", "engine_name", "engine_profile", "tensorrt_status"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    workspace_gib: float = 4.0
    optimization_level: int = 3
    timing_cache: Path | None = None


def tensorrt_status() -> tuple[bool, str]:
    """``(usable, why)``: TensorRT importable and a CUDA GPU present, else the reason it is not."""
    try:
        import tensorrt as trt
    except ImportError:
        trt = None
    if trt is None or not hasattr(trt, "Builder"):
        return False, "TensorRT is not installed (pip install 'swintormer[trt]', or use the NGC TensorRT container)"
    import torch

    if not torch.cuda.is_available():
        return False, f"TensorRT {trt.__version__} is installed but no CUDA GPU is visible"
    return True, f"TensorRT {trt.__version__} on {torch.cuda.get_device_name(0)}"


def engine_name(variant: str, component: str, precision: Precision) -> str:
    """``<variant>-<component>-<precision>-sm<cc>-trt<version>.plan`` for the GPU in use."""
    import tensorrt as trt
    import torch

    major, minor = torch.cuda.get_device_capability(0)
    return f"{variant}-{component}-{precision.value}-sm{major}{minor}-trt{trt.__version__}.plan"


def engine_profile(spec: ExportSpec):
    """Polygraphy's optimisation :class:`~polygraphy.backend.trt.Profile` of ``spec``: ``(min, opt,
    max)`` per input, from the same declaration the ONNX names, cache keys and Triton configs use."""
    from polygraphy.backend.trt import Profile

    profile = Profile()
    for name, (lo, opt, hi) in spec.profile().items():
        profile.add(name, min=lo, opt=opt, max=hi)
    return profile


def _loaders():
    try:
        from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath
        from polygraphy.exception import PolygraphyException
    except ImportError:
        raise SwintormerError("building TensorRT engines needs Polygraphy: pip install 'swintormer[trt]' (tensorrt, polygraphy)") from None
    return CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath, PolygraphyException


def build_engine(onnx_path: Path, spec: ExportSpec, out_path: Path, options: EngineOptions = EngineOptions()) -> Path:
    """Build and serialize an engine for ``onnx_path`` with ``spec``'s profile; returns ``out_path``.

    Through Polygraphy's TensorRT loaders (``NetworkFromOnnxPath`` strongly typed, ``CreateConfig``
    with the profile, workspace limit, optimisation level and timing cache, ``EngineBytesFromNetwork``,
    which merges the timing cache back under a file lock, so parallel builds share one). The int64
    ``timestep`` input of the denoiser is kept (TensorRT 10+ supports int64 I/O).
    """
    usable, why = tensorrt_status()
    if not usable:
        raise SwintormerError(why)
    import tensorrt as trt

    CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath, PolygraphyException = _loaders()
    cache = None
    if options.timing_cache is not None:
        options.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        cache = str(options.timing_cache)
    config = CreateConfig(profiles=[engine_profile(spec)], builder_optimization_level=options.optimization_level,
                          memory_pool_limits={trt.MemoryPoolType.WORKSPACE: int(options.workspace_gib * 2**30)},
                          load_timing_cache=cache)
    # strongly typed: required on TensorRT 10 for precision from the graph, accepted and ignored on 11
    network = NetworkFromOnnxPath(str(onnx_path), strongly_typed=True)
    try:
        serialized = EngineBytesFromNetwork(network, config=config, save_timing_cache=cache)()
    except PolygraphyException as exc:
        raise SwintormerError(f"TensorRT failed to build an engine from {Path(onnx_path).name}: {exc}") from None
    out_path = atomic_write_bytes(out_path, bytes(serialized))
    log.info("built %s (%.1f MB)", out_path.name, out_path.stat().st_size / 2**20)
    return out_path
